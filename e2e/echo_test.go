package e2e

import "testing"

// TestEchoPageShowsEachReply types messages into the echo page and checks
// that each reply appears, exactly and in order, and that the page shows the
// server's 1001 when the demo shuts down.
func TestEchoPageShowsEachReply(t *testing.T) {
	browser := newBrowser(t)
	d := startDemo(t, "echo", "")

	p := newPage(t, browser, "echo")
	p.open(d.URL("/"))
	p.waitStatus("open")
	if got := p.messages(); len(got) != 0 {
		t.Fatalf("before sending, #messages holds %q; the server sends nothing on open", got)
	}

	p.send("hello")
	p.waitMessages("小菠萝收到的消息是: hello")

	const unicode = "你好，小菠萝 🍍 ünïcødé"
	p.send(unicode)
	p.waitMessages("小菠萝收到的消息是: hello", "小菠萝收到的消息是: "+unicode)

	// An empty message is a message too: the reply is the bare prefix,
	// trailing space included.
	p.send("")
	p.waitMessages("小菠萝收到的消息是: hello", "小菠萝收到的消息是: "+unicode, "小菠萝收到的消息是: ")

	d.stop(t)
	p.waitStatusShown("closed (1001)")
}
