package main

import (
	"net/http"
	"testing"

	"github.com/wsroom/wsroom/examples/internal/demotest"
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
			header := http.Header{}
			if tc.cookie != "" {
				header.Set("Cookie", tc.cookie)
			}
			_, resp, err := demotest.TryDial(demotest.WSURL(srv.URL, tc.path), header)
			if err == nil || resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("%v, %v; want HTTP %d", resp, err, tc.status)
			}
		})
	}
}
