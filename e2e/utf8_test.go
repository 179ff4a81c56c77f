package e2e

import (
	"net/http"
	"testing"

	"github.com/wsroom/wsroom/internal/rawws"
)

// TestChatroomInvalidUTF8DisconnectsNoTab: a browser fails a connection
// that receives a text frame which is not UTF-8, so one raw client sending
// a byte like \xff used to close every tab of the room (its line was
// relayed to all). Now the sender is closed with 1007, a client_id that is
// not UTF-8 is refused before the upgrade, and every tab stays open.
func TestChatroomInvalidUTF8DisconnectsNoTab(t *testing.T) {
	browser := newBrowser(t)
	d := startDemo(t, "chatroom", "")
	var tabs []*chatPage
	for _, id := range []string{"t1", "t2", "t3", "t4", "t5"} {
		tabs = append(tabs, joinChat(t, browser, d, "tab "+id, "/?id="+id))
	}
	tabs[0].waitMessages(joined("t1"), joined("t2"), joined("t3"), joined("t4"), joined("t5"))

	// Joining under a name that is not UTF-8: refused, nobody hears of it.
	if _, resp, err := rawws.Dial(d.addr, "/ws/%FF", nil); resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("joining as %%FF: %v, %v; want HTTP 400", resp, err)
	}
	raw, _, err := rawws.Dial(d.addr, "/ws/X", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.WriteFrame(rawws.Frame{Fin: true, Opcode: rawws.OpText, Payload: []byte("\xff")}); err != nil {
		t.Fatal(err)
	}
	frames, err := raw.ExpectEOF(startTimeout)
	if err != nil || len(frames) == 0 {
		t.Fatalf("raw client: %v, %v", frames, err)
	}
	if code, _, _ := rawws.ParseClose(frames[len(frames)-1].Payload); code != 1007 {
		t.Fatalf("raw client closed with %d, want 1007", code)
	}

	tabs[4].send("still here")
	for i, tab := range tabs {
		want := []string{}
		for _, id := range []string{"t1", "t2", "t3", "t4", "t5"}[i:] {
			want = append(want, joined(id))
		}
		want = append(want, joined("X"), left("X"), said("t5", "still here"))
		if i == 4 {
			want = append(want, reply("t5", "still here"))
		}
		tab.waitMessages(want...)
		tab.waitStatus("open")
	}
	d.stop(t)
}
