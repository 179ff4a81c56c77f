package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// foreignPage is a page on another origin that connects to the WebSocket URL
// in its ?ws= parameter, sends one message once open, and shows the status
// and the replies with the demo pages' element ids.
const foreignPage = `<!DOCTYPE html>
<meta charset="utf-8">
<p id="status">connecting</p>
<ul id="messages"></ul>
<script>
const status = document.getElementById("status");
const ws = new WebSocket(new URLSearchParams(location.search).get("ws"));
ws.onopen = () => { status.textContent = "open"; ws.send("from afar"); };
ws.onclose = (e) => { status.textContent = "closed (" + e.code + ")"; };
ws.onmessage = (e) => {
	const li = document.createElement("li");
	li.textContent = e.data;
	document.getElementById("messages").appendChild(li);
};
</script>`

// TestForeignOriginPageIsRefused opens a page from another origin (the same
// host, another port) that connects to the echo demo. The browser sends that
// page's Origin, so the demo refuses the handshake, which the page sees as
// 1006. Started with -origin naming the page's host, the demo accepts it.
func TestForeignOriginPageIsRefused(t *testing.T) {
	browser := newBrowser(t)
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if _, err := w.Write([]byte(foreignPage)); err != nil {
			t.Errorf("serving the foreign page: %v", err)
		}
	}))
	t.Cleanup(foreign.Close)
	foreignHost := foreign.Listener.Addr().String()

	strict := startDemo(t, "echo", "")
	p := newPage(t, browser, "foreign page")
	p.open(foreign.URL + "/?ws=" + url.QueryEscape("ws://"+strict.addr+"/ws"))
	p.waitStatusShown("closed (1006)")
	if got := p.messages(); len(got) != 0 {
		t.Fatalf("a refused page got %q", got)
	}
	strict.stop(t)

	allowing := startDemo(t, "echo", "", "-origin", foreignHost)
	p.open(foreign.URL + "/?ws=" + url.QueryEscape("ws://"+allowing.addr+"/ws"))
	p.waitStatus("open")
	p.waitMessages("小菠萝收到的消息是: from afar")
	allowing.stop(t)
}
