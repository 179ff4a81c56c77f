package wsroom

import (
	"errors"
	"fmt"
	"github.com/coder/websocket"
	"slices"
	"strings"
	"testing"
)

func TestConnInManyRoomsAndEmptyRoomsAreFreed(t *testing.T) {
	const rooms = 20
	h := newHarness(t)
	cl, c := h.dial("")
	cl.start()
	ctx := ctxTimeout(t)
	var names []string
	for i := range rooms {
		name := fmt.Sprintf("room-%02d", i)
		names = append(names, name)
		if err := h.m.Join(ctx, c, name); err != nil {
			t.Fatalf("Join %s: %v", name, err)
		}
	}
	if got := c.Rooms(); !slices.Equal(got, names) {
		t.Fatalf("Rooms() = %v, want %v", got, names)
	}
	if n := h.m.Stats().Rooms; n != rooms {
		t.Fatalf("Stats().Rooms = %d, want %d", n, rooms)
	}
	for _, name := range names {
		if err := h.m.Broadcast(ctx, name, Text(name)); err != nil {
			t.Fatal(err)
		}
	}
	if got := cl.waitTexts(rooms); !slices.Equal(got, names) {
		t.Fatalf("got %v, want one message per room", got)
	}
	for _, name := range names {
		h.m.Leave(c, name)
	}
	if s := h.m.Stats(); s.Rooms != 0 || s.Connections != 1 {
		t.Fatalf("stats after leaving every room %+v, want no room, 1 connection", s)
	}
	if got := c.Rooms(); len(got) != 0 {
		t.Fatalf("Rooms() = %v after leaving", got)
	}
	// A broadcast to a freed room reaches nobody and is no error.
	if err := h.m.Broadcast(ctx, names[0], Text("nobody")); err != nil {
		t.Fatal(err)
	}
	h.m.Leave(c, "never-joined")
}

func TestRoomMembersAndJoinTwice(t *testing.T) {
	h := newHarness(t)
	ctx := ctxTimeout(t)
	cl1, c1 := h.dial("")
	_, c2 := h.dial("")
	cl1.start()
	if members := h.m.Members("lobby"); members != nil {
		t.Fatalf("a room nobody joined has members %v", members)
	}
	for _, c := range []*Conn{c1, c1, c2} {
		if err := h.m.Join(ctx, c, "lobby"); err != nil {
			t.Fatal(err)
		}
	}
	members := h.m.Members("lobby")
	if len(members) != 2 || !slices.Contains(members, c1) || !slices.Contains(members, c2) {
		t.Fatalf("Members() = %v after joining c1 twice and c2", members)
	}
	if got := c1.Rooms(); !slices.Equal(got, []string{"lobby"}) {
		t.Fatalf("Rooms() = %v after joining twice", got)
	}
	// Joined twice, but a member once: one copy of each broadcast.
	if err := h.m.Broadcast(ctx, "lobby", Text("once")); err != nil {
		t.Fatal(err)
	}
	if err := h.m.SendPersonal(ctx, c1, Text("marker")); err != nil {
		t.Fatal(err)
	}
	if got := cl1.waitTexts(2); !slices.Equal(got, []string{"once", "marker"}) {
		t.Fatalf("got %v, want one copy of the broadcast", got)
	}
	h.m.Leave(c1, "lobby")
	if members := h.m.Members("lobby"); len(members) != 1 || members[0] != c2 {
		t.Fatalf("after Leave: %v", members)
	}
}

func TestJoinAfterDisconnectFails(t *testing.T) {
	h := newHarness(t)
	_, c := h.dial("")
	h.m.Disconnect(c, websocket.StatusNormalClosure, "")
	if err := h.m.Join(ctxTimeout(t), c, "r"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Join after Disconnect: %v, want ErrClosed", err)
	}
	if s := h.m.Stats(); s.Rooms != 0 {
		t.Fatalf("a failed join left %d rooms", s.Rooms)
	}
}

func TestInvalidRoomNames(t *testing.T) {
	h := newHarness(t)
	_, c := h.dial("")
	ctx := ctxTimeout(t)
	tests := []struct{ name, room string }{
		{"empty", ""},
		{"too long", strings.Repeat("r", 256)},
		{"not UTF-8", "\xff\xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := h.m.Join(ctx, c, tt.room); !errors.Is(err, ErrInvalidRoom) {
				t.Errorf("Join: %v, want ErrInvalidRoom", err)
			}
			if err := h.m.Broadcast(ctx, tt.room, Text("x")); !errors.Is(err, ErrInvalidRoom) {
				t.Errorf("Broadcast: %v, want ErrInvalidRoom", err)
			}
		})
	}
	if err := h.m.Join(ctx, c, strings.Repeat("r", 255)); err != nil {
		t.Fatalf("Join of a 255-byte name: %v", err)
	}
}
