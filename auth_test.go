package wsroom

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
)

// verifyCredential accepts three credentials and fails loudly on "boom".
func verifyCredential(_ context.Context, credential string) (Identity, error) {
	switch credential {
	case "cookie-secret":
		return Identity{Subject: "cookie-user"}, nil
	case "token-secret":
		return Identity{Subject: "token-user"}, nil
	case "abc":
		return Identity{Subject: "protocol-user"}, nil
	case "boom":
		return Identity{}, errors.New("verifier broke")
	}
	return Identity{}, errors.New("unknown credential")
}

// greetIdentity is a handler that answers each connection with its
// identity's subject.
func greetIdentity(h *harness, w http.ResponseWriter, r *http.Request) {
	c, err := h.m.Connect(w, r, nil)
	if err != nil {
		h.connectErrs <- err
		return
	}
	h.conns <- c
	if err := h.m.SendPersonal(context.Background(), c, Text(c.Identity().Subject)); err != nil {
		h.t.Errorf("SendPersonal: %v", err)
	}
	for {
		if _, err := c.Read(context.Background()); err != nil {
			return
		}
	}
}

type credentials struct {
	cookie       string // value of the "session" cookie, if set
	token        string // value of the "token" query parameter, if set
	subprotocols []string
}

func (cr credentials) dialOptions(h *harness) (string, *websocket.DialOptions) {
	u := h.wsURL("")
	if cr.token != "\x00" {
		u += "?" + url.Values{"token": {cr.token}}.Encode()
	}
	opts := &websocket.DialOptions{Subprotocols: cr.subprotocols, HTTPHeader: http.Header{}}
	if cr.cookie != "\x00" {
		opts.HTTPHeader.Set("Cookie", (&http.Cookie{Name: "session", Value: cr.cookie}).String())
	}
	return u, opts
}

func TestCookieOrTokenMatrix(t *testing.T) {
	const absent = "\x00"
	tests := []struct {
		name         string
		cred         credentials
		wantSubject  string // "" means refused with HTTP 403
		wantProtocol string
	}{
		{name: "none", cred: credentials{cookie: absent, token: absent}},
		{name: "token", cred: credentials{cookie: absent, token: "token-secret"}, wantSubject: "token-user"},
		{name: "cookie", cred: credentials{cookie: "cookie-secret", token: absent}, wantSubject: "cookie-user"},
		{name: "both, cookie wins", cred: credentials{cookie: "cookie-secret", token: "token-secret"}, wantSubject: "cookie-user"},
		{name: "cookie wins even when the token is bad", cred: credentials{cookie: "cookie-secret", token: "wrong"}, wantSubject: "cookie-user"},
		{name: "empty token", cred: credentials{cookie: absent, token: ""}},
		{name: "empty cookie", cred: credentials{cookie: "", token: absent}},
		{name: "empty cookie falls back to token", cred: credentials{cookie: "", token: "token-secret"}, wantSubject: "token-user"},
		{name: "wrong token", cred: credentials{cookie: absent, token: "wrong"}},
		{name: "verify error", cred: credentials{cookie: absent, token: "boom"}},
		{
			name:         "subprotocol credential",
			cred:         credentials{cookie: absent, token: absent, subprotocols: []string{"wsroom", "wsroom.token.abc"}},
			wantSubject:  "protocol-user",
			wantProtocol: "wsroom",
		},
		{
			name: "wrong subprotocol credential",
			cred: credentials{cookie: absent, token: absent, subprotocols: []string{"wsroom", "wsroom.token.nope"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHarness(t, harnessConfig{
				opts:    []Option{WithAuthenticator(CookieOrToken("session", "token", verifyCredential))},
				handler: greetIdentity,
			})
			u, opts := tt.cred.dialOptions(h)
			ws, resp, err := websocket.Dial(ctxTimeout(t), u, opts)
			if tt.wantSubject == "" {
				if err == nil {
					_ = ws.CloseNow()
					t.Fatal("refused request was upgraded")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("dial: %v (response %v), want HTTP 403", err, resp)
				}
				if cerr := <-h.connectErrs; !errors.Is(cerr, ErrUnauthorized) {
					t.Fatalf("Connect error %v, want ErrUnauthorized", cerr)
				}
				if n := h.m.Stats().AuthFailures; n != 1 {
					t.Fatalf("AuthFailures = %d, want 1", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer ws.CloseNow()
			if got := ws.Subprotocol(); got != tt.wantProtocol {
				t.Fatalf("subprotocol %q, want %q", got, tt.wantProtocol)
			}
			_, data, err := ws.Read(ctxTimeout(t))
			if err != nil || string(data) != tt.wantSubject {
				t.Fatalf("identity %q (%v), want %q", data, err, tt.wantSubject)
			}
			if n := h.m.Stats().AuthFailures; n != 0 {
				t.Fatalf("AuthFailures = %d, want 0", n)
			}
		})
	}
}

func TestCloseAfterAcceptClosesWith1008(t *testing.T) {
	h := startHarness(t, harnessConfig{opts: []Option{
		WithAuthenticator(CookieOrToken("session", "token", verifyCredential)),
		WithAuthFailure(CloseAfterAccept),
	}})
	cl := h.dialOnly("token=wrong")
	cl.start()
	wantClose(t, cl.waitEnd(), StatusUnauthorized, "unauthorized")
	if err := <-h.connectErrs; !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Connect error %v, want ErrUnauthorized", err)
	}
	if s := h.m.Stats(); s.AuthFailures != 1 || s.Connections != 0 {
		t.Fatalf("stats %+v, want 1 auth failure and no connection", s)
	}
}

func TestMiddlewarePutsIdentityInContext(t *testing.T) {
	var verifications atomic.Int32
	verify := func(ctx context.Context, credential string) (Identity, error) {
		verifications.Add(1)
		return verifyCredential(ctx, credential)
	}
	for _, mode := range []AuthFailureMode{RejectHandshake, CloseAfterAccept} {
		verifications.Store(0)
		fromContext := make(chan Identity, 1)
		h := startHarness(t, harnessConfig{
			opts: []Option{WithAuthenticator(CookieOrToken("session", "token", verify)), WithAuthFailure(mode)},
			wrap: func(m *ConnectionManager, next http.Handler) http.Handler { return m.Middleware(next) },
			handler: func(h *harness, w http.ResponseWriter, r *http.Request) {
				id, _ := IdentityFrom(r.Context())
				fromContext <- id
				greetIdentity(h, w, r)
			},
		})

		cl := h.dialOnly("token=token-secret")
		cl.start()
		if got := cl.waitTexts(1); got[0] != "token-user" {
			t.Fatalf("mode %d: Connect's identity %q, want token-user", mode, got[0])
		}
		if id := <-fromContext; id.Subject != "token-user" {
			t.Fatalf("mode %d: identity in context %+v", mode, id)
		}
		if n := verifications.Load(); n != 1 {
			t.Fatalf("mode %d: verified %d times, want once (Connect must reuse the Middleware's identity)", mode, n)
		}

		switch mode {
		case RejectHandshake:
			_, resp, err := websocket.Dial(ctxTimeout(t), h.wsURL("token=wrong"), nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("refused request: %v, want HTTP 403", err)
			}
		case CloseAfterAccept:
			refused := h.dialOnly("token=wrong")
			refused.start()
			wantClose(t, refused.waitEnd(), StatusUnauthorized, "unauthorized")
		}
		if n := h.m.Stats().AuthFailures; n != 1 {
			t.Fatalf("mode %d: AuthFailures = %d, want 1", mode, n)
		}
	}
}

func TestStaticTokenAcceptsOnlyTheExactSecret(t *testing.T) {
	verify := StaticToken("s3cret", Identity{Subject: "svc"})
	tests := []struct {
		credential string
		ok         bool
	}{
		{"s3cret", true},
		{"s3cre", false},
		{"s3cret!", false},
		{"S3CRET", false},
		{"", false},
		{"s3cret\x00", false},
	}
	for _, tt := range tests {
		id, err := verify(context.Background(), tt.credential)
		if ok := err == nil; ok != tt.ok {
			t.Errorf("StaticToken(%q): err %v, want ok=%v", tt.credential, err, tt.ok)
		}
		if tt.ok && id.Subject != "svc" {
			t.Errorf("StaticToken(%q): identity %+v", tt.credential, id)
		}
	}
}

func TestOriginPolicy(t *testing.T) {
	tests := []struct {
		name       string
		opts       []Option
		origin     string
		wantStatus int // 0: upgraded
	}{
		{name: "cross origin refused", origin: "http://evil.example", wantStatus: http.StatusForbidden},
		{name: "no origin accepted"},
		{name: "allowed by pattern", opts: []Option{WithOriginPatterns("evil.example")}, origin: "http://evil.example"},
		{name: "other origin still refused", opts: []Option{WithOriginPatterns("good.example")}, origin: "http://evil.example", wantStatus: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.opts...)
			header := http.Header{}
			if tt.origin != "" {
				header.Set("Origin", tt.origin)
			}
			ws, resp, err := websocket.Dial(ctxTimeout(t), h.wsURL(""), &websocket.DialOptions{HTTPHeader: header})
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				_ = ws.CloseNow()
				h.nextConn()
				return
			}
			if err == nil {
				_ = ws.CloseNow()
				t.Fatal("cross-origin request was upgraded")
			}
			if resp == nil || resp.StatusCode != tt.wantStatus {
				t.Fatalf("dial: %v, want HTTP %d", err, tt.wantStatus)
			}
			if cerr := <-h.connectErrs; cerr == nil {
				t.Fatal("Connect reported no error")
			}
		})
	}
}
