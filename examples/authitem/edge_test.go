package main

import (
	"net/http"
	"testing"

	"github.com/wsroom/wsroom/wsroomtest"
)

// TestItemRefusesWhatIsNotUTF8: item_id, q and the credential are echoed in
// text messages, which must be UTF-8. A request carrying invalid UTF-8 in
// item_id or q gets HTTP 400, and a credential that is not UTF-8 is simply
// refused (403), before any upgrade.
func TestItemRefusesWhatIsNotUTF8(t *testing.T) {
	srv := startServer(t)
	for _, tc := range []struct {
		name   string
		path   string
		cookie string
		status int
	}{
		{"item_id", "/items/%FF/ws?token=abc", "", http.StatusBadRequest},
		{"q", "/items/foo/ws?token=abc&q=%FE", "", http.StatusBadRequest},
		{"token", "/items/foo/ws?token=%FF", "", http.StatusForbidden},
		{"cookie", "/items/foo/ws", "session=\xff", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []wsroomtest.DialOption
			if tc.cookie != "" {
				// Written as is: wsroomtest.Cookie would drop the \xff,
				// as net/http does.
				opts = append(opts, wsroomtest.Header("Cookie", tc.cookie))
			}
			srv.ExpectHTTPStatus(tc.path, tc.status, opts...)
		})
	}
}
