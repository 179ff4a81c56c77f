package wsroomtest_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/wsroomtest"
)

// chatHandler is the handler under test: every message goes to the room,
// with who said it.
func chatHandler(m *wsroom.ConnectionManager) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, id := context.Background(), r.URL.Query().Get("id")
		_, _ = m.Start(w, r, &wsroom.ConnectOptions{ID: id}, wsroom.Hooks{
			OnOpen: func(c *wsroom.Conn) { _ = m.Join(ctx, c, "chat") },
			OnMessage: func(c *wsroom.Conn, msg wsroom.Message) {
				_ = m.Broadcast(ctx, "chat", wsroom.Text(id+": "+msg.Text()))
			},
		})
	})
}

// A test of a chat handler: two clients, a message that both see, and a
// page from another origin refused. In a test function, t is its
// *testing.T.
func Example() {
	t := newExampleT()
	m, _ := wsroom.New()
	srv := wsroomtest.NewServer(t, chatHandler(m))
	ann, bob := srv.Dial("/?id=ann"), srv.Dial("/?id=bob")
	ann.Send("hi")
	ann.ExpectMessage("ann: hi")
	bob.ExpectMessage("ann: hi")
	srv.ExpectHTTPStatus("/", http.StatusForbidden, wsroomtest.Origin("http://evil.example"))

	_ = m.Shutdown(context.Background())
	t.end()
	// Output: ok
}

// exampleT stands in for the *testing.T a test function gets.
type exampleT struct {
	cleanups []func()
	failed   bool
}

func newExampleT() *exampleT { return &exampleT{} }

func (t *exampleT) Helper()          {}
func (t *exampleT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(format string, args ...any) {
	t.failed = true
	fmt.Printf(format+"\n", args...)
}
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// end runs the cleanups, last first, as the testing package does.
func (t *exampleT) end() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	if !t.failed {
		fmt.Println("ok")
	}
}
