package nodetest

import (
	"strconv"
	"testing"
)

func TestRoomsOrderPassesOverTheMemoryBroker(t *testing.T) {
	rooms := make([]string, 10)
	for i := range rooms {
		rooms[i] = "room-" + strconv.Itoa(i)
	}
	CheckRoomsOrder(t, cluster(t, 3), rooms, 2, 20)
}

func TestTakeRoomMessagesCollectsUntilEveryEndMarker(t *testing.T) {
	nodes := cluster(t, 2)
	rooms := []string{"a", "b"}
	c := nodes[1].Dial(t, "c", rooms...)
	sent := [][]int{{3, 2}, {1, 0}}
	for i, n := range nodes {
		for r, room := range rooms {
			for seq := range sent[i][r] {
				n.Broadcast(t, room, RoomMessage(i, r, seq))
			}
		}
	}
	SendEndMarkers(t, nodes, rooms)
	got := c.TakeRoomMessages(t, len(nodes), len(rooms))
	if err := got.Check(sent, func(int, int) bool { return true }); err != nil {
		t.Fatal(err)
	}
	got[[2]int{0, 0}] = []int{0, 2, 1}
	if err := got.Check(sent, func(int, int) bool { return false }); err == nil {
		t.Fatal("Check accepted 0, 2, 1")
	}
	got[[2]int{0, 0}] = []int{0, 2}
	if err := got.Check(sent, func(int, int) bool { return false }); err != nil {
		t.Fatalf("Check refused a gap in an incomplete room: %v", err)
	}
	if err := got.Check(sent, func(int, int) bool { return true }); err == nil {
		t.Fatal("Check accepted a gap in a complete room")
	}
}
