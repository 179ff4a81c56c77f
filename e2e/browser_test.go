package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

const (
	// testTimeout bounds one test's browser, pages and waits together.
	testTimeout = 60 * time.Second
	// waitTimeout bounds one wait for a page condition.
	waitTimeout = 10 * time.Second
	// pollInterval is how often a wait re-reads the page.
	pollInterval = 25 * time.Millisecond
)

// Selectors of the demo pages. The ids are the tutorial's and the demos keep
// them, so code written against the tutorial's pages works against ours.
const (
	statusSel  = "#status"
	messageSel = "#messageText"
	// sendSel is the button that submits the message form. The item page
	// may hold its #connect button in the same form.
	sendSel = "form:has(#messageText) button:not(#connect)"
)

// chromiumPath returns the browser to drive: $CHROMIUM_PATH, or Debian's
// /usr/bin/chromium. Without one the test is skipped, or fails when $CI is
// "true", so a CI machine cannot pass by having no browser.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM_PATH")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("no Chromium at %s (%v); install it with e2e/install-chromium.sh or set CHROMIUM_PATH", path, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// newBrowser starts a headless Chromium with a fresh profile for this test
// and returns its context. The browser is closed when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(760, 480),
		// Keep the browser off the network: only the demo on 127.0.0.1
		// should see traffic.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancel()
	})
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return browserCtx
}

// page is one browser tab in a browser context of its own, so tabs share no
// cookies or storage, like separate browser profiles.
type page struct {
	t      *testing.T
	name   string // for failure messages
	ctx    context.Context
	cancel context.CancelFunc
	errors *lockedBuffer // uncaught exceptions and console errors
}

// newPage opens a blank tab in browser.
func newPage(t *testing.T, browser context.Context, name string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	p := &page{t: t, name: name, ctx: ctx, cancel: cancel, errors: &lockedBuffer{}}
	t.Cleanup(cancel)
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			fmt.Fprintf(p.errors, "uncaught: %s\n", exceptionText(ev.ExceptionDetails))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, arg := range ev.Args {
					args = append(args, string(arg.Value)+arg.Description)
				}
				fmt.Fprintf(p.errors, "console.error: %s\n", strings.Join(args, " "))
			}
		}
	})
	if err != nil {
		t.Fatalf("opening tab %s: %v", name, err)
	}
	return p
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Text
}

// close closes the tab, which closes its WebSocket as a closed browser tab does.
func (p *page) close() {
	p.cancel()
}

// open loads url and waits until the page shows its status element. From
// then on the page keeps every status it shows in window.statusHistory, so
// a test cannot miss a short-lived one such as the close code shown before
// a reconnect attempt.
func (p *page) open(url string) {
	p.t.Helper()
	p.do("loading "+url,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(statusSel)),
		chromedp.Evaluate[chromedp.Void](recordStatusJS),
	)
}

const recordStatusJS = `(() => {
	const status = document.querySelector("#status");
	window.statusHistory = [status.textContent];
	new MutationObserver(() => window.statusHistory.push(status.textContent))
		.observe(status, {childList: true, characterData: true, subtree: true});
})()`

// do runs actions in the tab with waitTimeout as the deadline.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v%s", p.name, what, err, p.errorReport())
	}
}

// eval evaluates a JavaScript expression in the tab.
func eval[T any](p *page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// waitFor re-evaluates expr until ok accepts its value, and fails the test
// with the last value seen if that does not happen within waitTimeout.
func waitFor[T any](p *page, what, expr string, ok func(T) bool) T {
	p.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var last T
	var lastErr error
	for {
		v, err := eval[T](p, expr)
		if err == nil {
			if ok(v) {
				return v
			}
			last, lastErr = v, nil
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: waited %v for %s; last saw %#v (error: %v)%s",
				p.name, waitTimeout, what, last, lastErr, p.errorReport())
		}
		select {
		case <-p.ctx.Done():
			p.t.Fatalf("%s: waiting for %s: %v", p.name, what, p.ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// textExpr is the text content of the element sel, or "" if there is none.
func textExpr(sel string) string {
	return fmt.Sprintf(`document.querySelector(%s)?.textContent ?? ""`, jsString(sel))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return string(b)
}

// waitStatus waits until #status reads want, such as "open" or "closed (1001)".
func (p *page) waitStatus(want string) {
	p.t.Helper()
	waitFor(p, fmt.Sprintf("%s to read %q", statusSel, want), textExpr(statusSel),
		func(got string) bool { return got == want })
}

// waitStatusShown waits until #status has read want at some point since the
// page was opened.
func (p *page) waitStatusShown(want string) {
	p.t.Helper()
	waitFor(p, fmt.Sprintf("%s to have read %q", statusSel, want), "window.statusHistory",
		func(seen []string) bool { return slices.Contains(seen, want) })
}

// messagesExpr lists the text of each item in #messages, in page order.
const messagesExpr = `Array.from(document.querySelectorAll("#messages li"), li => li.textContent)`

// messages returns the text of each item in #messages, in order.
func (p *page) messages() []string {
	p.t.Helper()
	v, err := eval[[]string](p, messagesExpr)
	if err != nil {
		p.t.Fatalf("%s: reading #messages: %v", p.name, err)
	}
	return v
}

// waitMessages waits until #messages holds exactly want, in order.
func (p *page) waitMessages(want ...string) {
	p.t.Helper()
	waitFor(p, fmt.Sprintf("#messages to be %q", want), messagesExpr,
		func(got []string) bool { return slices.Equal(got, want) })
}

// fill empties the input sel and types text into it, as a person would.
// (chromedp's Clear and SetValue cannot set an empty value: they pass "" to
// the browser as no value at all.)
func fill(sel, text string) []chromedp.Action[chromedp.Void] {
	actions := []chromedp.Action[chromedp.Void]{
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).value = ""`, jsString(sel))),
	}
	if text != "" {
		actions = append(actions, chromedp.SendKeys(chromedp.CSS(sel), text))
	}
	return actions
}

// send types text into the message box and clicks the send button.
func (p *page) send(text string) {
	p.t.Helper()
	p.do("sending "+text, append(fill(messageSel, text), chromedp.Click(chromedp.CSS(sendSel)))...)
}

// errorReport formats the page's uncaught exceptions and console errors for
// a failure message.
func (p *page) errorReport() string {
	if s := p.errors.String(); s != "" {
		return "\npage errors:\n" + s
	}
	return ""
}
