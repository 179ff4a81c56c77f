package wsroom

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Identity is who a connection belongs to, as an [Authenticator] found it.
type Identity struct {
	// Subject names the principal: a user ID, an account, a token's owner.
	Subject string
	// Data carries whatever else the Authenticator attached (claims, a user
	// record). wsroom never reads or changes it.
	Data any
}

// AuthFailureMode says how [ConnectionManager.Connect] answers a request its
// [Authenticator] refuses.
type AuthFailureMode int

const (
	// RejectHandshake answers HTTP 403 before the upgrade; no WebSocket is
	// accepted. It is the default, and what the tutorial's app does.
	RejectHandshake AuthFailureMode = iota
	// CloseAfterAccept accepts the upgrade and closes at once with 1008
	// (Policy Violation) and the reason "unauthorized", which a browser's
	// CloseEvent shows, while an HTTP 403 is invisible to page scripts.
	CloseAfterAccept
)

// An Authenticator decides, before the upgrade, whether a request may open
// a WebSocket, and as whom. A non-nil error refuses the request; it should
// match [ErrUnauthorized] and must not contain the credential.
type Authenticator interface {
	Authenticate(r *http.Request) (Identity, error)
}

// AuthFunc adapts a function to the [Authenticator] interface.
type AuthFunc func(r *http.Request) (Identity, error)

// Authenticate calls f(r).
func (f AuthFunc) Authenticate(r *http.Request) (Identity, error) { return f(r) }

// ErrUnauthorized is matched by every authentication failure.
var ErrUnauthorized = errors.New("wsroom: unauthorized")

// ErrNoCredential reports a request that carried no credential at all. It
// matches [ErrUnauthorized].
var ErrNoCredential = fmt.Errorf("%w: no credential", ErrUnauthorized)

// TokenSubprotocol is the prefix of a Sec-WebSocket-Protocol entry that
// carries a credential, for browsers, which cannot set headers on a
// WebSocket request. A page opens
//
//	new WebSocket(url, ["wsroom", "wsroom.token." + token])
//
// and the server answers with the "wsroom" subprotocol, never echoing the
// token. The token must be made of characters allowed in an HTTP token
// (base64url and JWTs are).
const TokenSubprotocol = "wsroom.token."

// tokenProtocolName is the subprotocol the server selects when a client sent
// its credential in a [TokenSubprotocol] entry.
const tokenProtocolName = "wsroom"

// CookieOrToken returns the tutorial's authentication dependency: the
// credential is the value of the cookie named cookieName, or else of the
// query parameter named queryParam, or else of a [TokenSubprotocol] entry,
// and verify decides whom it belongs to. The cookie wins over the others; an
// empty value counts as absent. A request with no credential gets
// [ErrNoCredential]; an error from verify is wrapped in [ErrUnauthorized].
// A credential that is not valid UTF-8 is refused without calling verify,
// so that it never reaches a text message. An empty cookieName or
// queryParam turns that source off.
func CookieOrToken(cookieName, queryParam string, verify func(ctx context.Context, credential string) (Identity, error)) Authenticator {
	return AuthFunc(func(r *http.Request) (Identity, error) {
		credential, source := findCredential(r, cookieName, queryParam)
		if credential == "" {
			return Identity{}, ErrNoCredential
		}
		if !utf8.ValidString(credential) {
			return Identity{}, fmt.Errorf("%w: %s credential is not UTF-8", ErrUnauthorized, source)
		}
		id, err := verify(r.Context(), credential)
		if err != nil {
			return Identity{}, fmt.Errorf("%w: %s credential refused: %w", ErrUnauthorized, source, err)
		}
		return id, nil
	})
}

func findCredential(r *http.Request, cookieName, queryParam string) (credential, source string) {
	if cookieName != "" {
		if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
			return c.Value, "cookie"
		}
	}
	if queryParam != "" {
		if v := r.URL.Query().Get(queryParam); v != "" {
			return v, "query"
		}
	}
	if v := protocolCredential(r); v != "" {
		return v, "subprotocol"
	}
	return "", ""
}

// protocolCredential returns the credential of the first non-empty
// [TokenSubprotocol] entry in r's Sec-WebSocket-Protocol headers.
func protocolCredential(r *http.Request) string {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), TokenSubprotocol); ok && v != "" {
				return v
			}
		}
	}
	return ""
}

// StaticToken returns a verify function for [CookieOrToken] that accepts
// exactly secret, as id, comparing in constant time (neither the content
// nor the length of secret leaks through timing).
func StaticToken(secret string, id Identity) func(context.Context, string) (Identity, error) {
	want := sha256.Sum256([]byte(secret))
	return func(_ context.Context, credential string) (Identity, error) {
		got := sha256.Sum256([]byte(credential))
		if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
			return Identity{}, errors.New("credential does not match")
		}
		return id, nil
	}
}

type identityKey struct{}

// authFailedKey marks a request refused by [ConnectionManager.Middleware] in
// [CloseAfterAccept] mode, so that Connect closes it with 1008.
type authFailedKey struct{}

// IdentityFrom returns the identity that [ConnectionManager.Middleware] put
// in ctx, if any.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Middleware authenticates requests with the manager's [Authenticator]
// before they reach next, for routers that put authentication in front of
// handlers. On success the identity is in the request's context
// ([IdentityFrom]) and [ConnectionManager.Connect] uses it without
// authenticating again. On failure the request is answered HTTP 403, or, in
// [CloseAfterAccept] mode, passed on so that Connect accepts and closes it
// with 1008. Without an Authenticator, Middleware passes every request on.
func (m *ConnectionManager) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.cfg.authenticator == nil {
			next.ServeHTTP(w, r)
			return
		}
		id, err := m.authenticate(r)
		switch {
		case err == nil:
			r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		case m.cfg.authFailure == CloseAfterAccept:
			r = r.WithContext(context.WithValue(r.Context(), authFailedKey{}, err))
		default:
			http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate runs the Authenticator, counting and logging failures
// without the credential.
func (m *ConnectionManager) authenticate(r *http.Request) (Identity, error) {
	id, err := m.cfg.authenticator.Authenticate(r)
	if err != nil {
		m.stats.authFailures.Add(1)
		m.cfg.logger.Info("wsroom: authentication failed", "remote", r.RemoteAddr, "path", r.URL.Path, "no_credential", errors.Is(err, ErrNoCredential))
		if !errors.Is(err, ErrUnauthorized) {
			err = fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		return Identity{}, err
	}
	return id, nil
}
