package wsroom

import (
	"errors"
	"fmt"
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
		if err := h.m.Room(name).Join(ctx, c); err != nil {
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
		if err := h.m.Room(name).Broadcast(ctx, Text(name)); err != nil {
			t.Fatal(err)
		}
	}
	if got := cl.waitTexts(rooms); !slices.Equal(got, names) {
		t.Fatalf("got %v, want one message per room", got)
	}
	for _, name := range names {
		h.m.Room(name).Leave(c)
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
	h.m.Room("never-joined").Leave(c)
}

func TestRoomMembersLenAndJoinTwice(t *testing.T) {
	h := newHarness(t)
	ctx := ctxTimeout(t)
	cl1, c1 := h.dial("")
	_, c2 := h.dial("")
	cl1.start()
	r := h.m.Room("lobby")
	if r.Name() != "lobby" || r.Len() != 0 || r.Members() != nil {
		t.Fatalf("fresh room: name %q, len %d, members %v", r.Name(), r.Len(), r.Members())
	}
	for _, c := range []*Conn{c1, c1, c2} {
		if err := r.Join(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if r.Len() != 2 {
		t.Fatalf("Len() = %d after joining c1 twice and c2, want 2", r.Len())
	}
	members := r.Members()
	if len(members) != 2 || !slices.Contains(members, c1) || !slices.Contains(members, c2) {
		t.Fatalf("Members() = %v", members)
	}
	if got := c1.Rooms(); !slices.Equal(got, []string{"lobby"}) {
		t.Fatalf("Rooms() = %v after joining twice", got)
	}
	// Joined twice, but a member once: one copy of each broadcast.
	if err := r.Broadcast(ctx, Text("once")); err != nil {
		t.Fatal(err)
	}
	if err := h.m.SendPersonal(ctx, c1, Text("marker")); err != nil {
		t.Fatal(err)
	}
	if got := cl1.waitTexts(2); !slices.Equal(got, []string{"once", "marker"}) {
		t.Fatalf("got %v, want one copy of the broadcast", got)
	}
	r.Leave(c1)
	if r.Len() != 1 || r.Members()[0] != c2 {
		t.Fatalf("after Leave: %v", r.Members())
	}
}

func TestJoinAfterDisconnectFails(t *testing.T) {
	h := newHarness(t)
	_, c := h.dial("")
	h.m.Disconnect(c)
	if err := h.m.Room("r").Join(ctxTimeout(t), c); !errors.Is(err, ErrClosed) {
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
			if err := h.m.Room(tt.room).Join(ctx, c); !errors.Is(err, ErrInvalidRoom) {
				t.Errorf("Join: %v, want ErrInvalidRoom", err)
			}
			if err := h.m.Broadcast(ctx, tt.room, Text("x")); !errors.Is(err, ErrInvalidRoom) {
				t.Errorf("Broadcast: %v, want ErrInvalidRoom", err)
			}
		})
	}
	if err := h.m.Room(strings.Repeat("r", 255)).Join(ctx, c); err != nil {
		t.Fatalf("Join of a 255-byte name: %v", err)
	}
}
