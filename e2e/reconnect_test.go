package e2e

import "testing"

// TestPageReconnectsAfterRestart stops the echo demo under an open page,
// starts it again on the same address, and checks that the page shows the
// server's 1001, reconnects by itself and works again.
func TestPageReconnectsAfterRestart(t *testing.T) {
	browser := newBrowser(t)
	first := startDemo(t, "echo", "")

	p := newPage(t, browser, "echo")
	p.open(first.URL("/"))
	p.waitStatus("open")

	first.stop(t)
	p.waitStatusShown("closed (1001)")

	second := startDemo(t, "echo", first.addr)
	p.waitStatus("open")
	p.send("again")
	p.waitMessages("小菠萝收到的消息是: again")
	second.stop(t)
}
