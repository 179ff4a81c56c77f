package e2e

import (
	"slices"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// connectItem fills the item page's connection form and clicks #connect.
// It empties the page's status history first, so that waitStatusShown sees
// only the new connection's states, not the old one's "open".
func (p *page) connectItem(itemID, token, q string) {
	p.t.Helper()
	p.do("connecting to item "+itemID, slices.Concat(
		fill("#itemId", itemID), fill("#token", token), fill("#q", q),
		[]chromedp.Action[chromedp.Void]{
			chromedp.Evaluate[chromedp.Void](`window.statusHistory = []`),
			chromedp.Click(chromedp.CSS("#connect")),
		})...)
}

// TestAuthItemPage checks the item page's three outcomes: with neither token
// nor cookie the handshake is refused and the page shows the closed
// connection and no messages; with a token each message gets the token line
// and the message line, plus the query line when q is set; and the session
// cookie wins over the token.
func TestAuthItemPage(t *testing.T) {
	browser := newBrowser(t)
	d := startDemo(t, "authitem", "")

	p := newPage(t, browser, "item")
	p.open(d.URL("/"))
	// The page connects on load with the token its form is filled with.
	p.waitStatus("open")

	p.connectItem("foo", "", "")
	// A refused handshake reaches a page only as 1006; the 403 itself is
	// hidden from scripts.
	p.waitStatusShown("closed (1006)")
	if got := p.messages(); len(got) != 0 {
		t.Fatalf("without a token, #messages holds %q; want none", got)
	}

	p.connectItem("foo", "abc", "")
	p.waitStatusShown("open")
	p.send("hi")
	p.waitMessages(
		"cookie or token value is:abc",
		"Message text was: hi, for item ID: foo",
	)

	p.connectItem("foo", "abc", "hello")
	p.waitStatusShown("open")
	p.send("again")
	p.waitMessages(
		"cookie or token value is:abc",
		"Message text was: hi, for item ID: foo",
		"cookie or token value is:abc",
		"query param value is:hello",
		"Message text was: again, for item ID: foo",
	)

	p.do("setting the session cookie", chromedp.Evaluate[chromedp.Void](`document.cookie = "session=xyz; path=/"`))
	p.connectItem("物品 1", "abc", "")
	p.waitStatusShown("open")
	p.send("yo")
	p.waitMessages(
		"cookie or token value is:abc",
		"Message text was: hi, for item ID: foo",
		"cookie or token value is:abc",
		"query param value is:hello",
		"Message text was: again, for item ID: foo",
		"cookie or token value is:xyz",
		"Message text was: yo, for item ID: 物品 1",
	)

	// Enter in the message box sends the message; it must not trigger
	// #connect, which would drop and reopen the connection.
	p.do("sending with Enter",
		chromedp.Evaluate[chromedp.Void](`window.statusHistory = []`),
		chromedp.SendKeys(chromedp.CSS(messageSel), "typed"+kb.Enter),
	)
	p.waitMessages(
		"cookie or token value is:abc",
		"Message text was: hi, for item ID: foo",
		"cookie or token value is:abc",
		"query param value is:hello",
		"Message text was: again, for item ID: foo",
		"cookie or token value is:xyz",
		"Message text was: yo, for item ID: 物品 1",
		"cookie or token value is:xyz",
		"Message text was: typed, for item ID: 物品 1",
	)
	if seen, err := eval[[]string](p, "window.statusHistory"); err != nil || len(seen) != 0 {
		t.Fatalf("pressing Enter in the message box changed the status: %q (%v); want no reconnect", seen, err)
	}

	d.stop(t)
}
