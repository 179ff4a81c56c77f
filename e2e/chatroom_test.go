package e2e

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// chatPage is one member of the chat room: a tab on the chatroom demo's page.
type chatPage struct {
	*page
	id string // the client id the page chose, shown in #ws-id
}

// joinChat opens the chat page at path in a new tab, waits until it is
// connected and returns it with the id it shows.
func joinChat(t *testing.T, browser context.Context, d *demo, name, path string) *chatPage {
	t.Helper()
	p := newPage(t, browser, name)
	p.open(d.URL(path))
	p.waitStatus("open")
	id := waitFor(p, "#ws-id to show the client id", textExpr("#ws-id"),
		func(id string) bool { return strings.TrimSpace(id) != "" })
	return &chatPage{page: p, id: strings.TrimSpace(id)}
}

func joined(id string) string     { return id + " 进入了聊天室" }
func left(id string) string       { return id + " 离开了聊天室" }
func said(id, msg string) string  { return id + " 发送消息:" + msg }
func reply(id, msg string) string { return "服务端回复" + id + ":你发送的信息是:" + msg }

// membersExpr lists the member list's entries.
const membersExpr = `Array.from(document.querySelectorAll("#members li"), li => li.textContent.trim())`

// waitMembers waits until the member list holds exactly the ids, in any order.
func (c *chatPage) waitMembers(ids ...string) {
	c.t.Helper()
	want := slices.Sorted(slices.Values(ids))
	waitFor(c.page, fmt.Sprintf("#members to list %q", want), membersExpr,
		func(got []string) bool { return slices.Equal(slices.Sorted(slices.Values(got)), want) })
}

// TestChatroomThreeTabs plays the tutorial's scenario in three tabs: each tab
// sees the joins from its own onward, a message reaches all three with the
// personal reply on the sender only, and a closed tab's leave reaches the
// other two.
func TestChatroomThreeTabs(t *testing.T) {
	browser := newBrowser(t)
	d := startDemo(t, "chatroom", "")

	a := joinChat(t, browser, d, "tab A", "/")
	a.waitMessages(joined(a.id))

	b := joinChat(t, browser, d, "tab B", "/")
	b.waitMessages(joined(b.id))
	a.waitMessages(joined(a.id), joined(b.id))

	// A and B let the page choose an id; C names its own, one that must
	// survive the trip through the URL path.
	const idC = "小明 C"
	c := joinChat(t, browser, d, "tab C", "/?id="+url.QueryEscape(idC))
	c.waitMessages(joined(c.id))
	b.waitMessages(joined(b.id), joined(c.id))
	a.waitMessages(joined(a.id), joined(b.id), joined(c.id))
	if a.id == b.id {
		t.Fatalf("tabs A and B both chose the id %q", a.id)
	}
	if c.id != idC {
		t.Fatalf("tab C shows the id %q, want %q from ?id=", c.id, idC)
	}
	for _, p := range []*chatPage{a, b, c} {
		p.waitMembers(a.id, b.id, c.id)
	}

	const msg = "hello from B"
	b.send(msg)
	a.waitMessages(joined(a.id), joined(b.id), joined(c.id), said(b.id, msg))
	b.waitMessages(joined(b.id), joined(c.id), said(b.id, msg), reply(b.id, msg))
	c.waitMessages(joined(c.id), said(b.id, msg))
	saveScreenshots(t, "chat.png", a.page, b.page, c.page)

	c.close()
	a.waitMessages(joined(a.id), joined(b.id), joined(c.id), said(b.id, msg), left(c.id))
	b.waitMessages(joined(b.id), joined(c.id), said(b.id, msg), reply(b.id, msg), left(c.id))
	a.waitMembers(a.id, b.id)
	b.waitMembers(a.id, b.id)

	d.stop(t)
	a.waitStatusShown("closed (1001)")
	b.waitStatusShown("closed (1001)")
}

// TestChatroomRoomsAreSeparate puts two tabs in the room "blue" (?room=) and
// one in the default room: joins, messages and member lists stay within
// their room.
func TestChatroomRoomsAreSeparate(t *testing.T) {
	browser := newBrowser(t)
	d := startDemo(t, "chatroom", "")

	x := joinChat(t, browser, d, "tab x", "/?room=blue&id=x")
	y := joinChat(t, browser, d, "tab y", "/?id=y")
	z := joinChat(t, browser, d, "tab z", "/?room=blue&id=z")
	x.waitMessages(joined("x"), joined("z"))
	y.waitMessages(joined("y"))
	z.waitMessages(joined("z"))
	x.waitMembers("x", "z")
	y.waitMembers("y")

	y.send("anyone?")
	z.send("hi x")
	y.waitMessages(joined("y"), said("y", "anyone?"), reply("y", "anyone?"))
	x.waitMessages(joined("x"), joined("z"), said("z", "hi x"))
	z.waitMessages(joined("z"), said("z", "hi x"), reply("z", "hi x"))

	d.stop(t)
}
