package wsclient

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrHandshake reports a server answer that is not a valid WebSocket upgrade.
var ErrHandshake = errors.New("wsclient: handshake failed")

// acceptGUID is the fixed GUID of RFC 6455 section 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Options tune Dial. The zero value is ready to use.
type Options struct {
	// Dialer opens the TCP connection. Default: a zero net.Dialer.
	Dialer *net.Dialer
	// DialContext, when set, opens the connection instead of Dialer (to
	// wrap it, e.g. in a rate limiter).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ReadBufferSize is the size of the bufio.Reader over the connection.
	// Default: 4096 bytes.
	ReadBufferSize int
}

// Dial opens a WebSocket connection to rawURL, which must be a ws:// URL.
// ctx bounds the TCP connect and the handshake, not the returned connection.
func Dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("wsclient: %w", err)
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("wsclient: scheme %q not supported (only ws)", u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	dial := opts.DialContext
	if dial == nil {
		dialer := opts.Dialer
		if dialer == nil {
			dialer = &net.Dialer{}
		}
		dial = dialer.DialContext
	}
	nc, err := dial(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("wsclient: %w", err)
	}
	bufSize := opts.ReadBufferSize
	if bufSize <= 0 {
		bufSize = 4096
	}
	br, err := handshake(ctx, nc, u, bufSize)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return newConn(nc, br), nil
}

// handshake sends the upgrade request and checks the server's answer.
func handshake(ctx context.Context, nc net.Conn, u *url.URL, bufSize int) (*bufio.Reader, error) {
	if deadline, ok := ctx.Deadline(); ok {
		if err := nc.SetDeadline(deadline); err != nil {
			return nil, fmt.Errorf("wsclient: %w", err)
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var nonce [16]byte
	_, _ = rand.Read(nonce[:]) // never fails
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		return nil, fmt.Errorf("wsclient: %w", ctxErr(ctx, err))
	}
	br := bufio.NewReaderSize(nc, bufSize)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, fmt.Errorf("wsclient: reading handshake response: %w", ctxErr(ctx, err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("%w: status %s", ErrHandshake, resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
		!headerContainsToken(resp.Header, "Connection", "upgrade") {
		return nil, fmt.Errorf("%w: missing Upgrade/Connection headers", ErrHandshake)
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key) {
		return nil, fmt.Errorf("%w: wrong Sec-WebSocket-Accept", ErrHandshake)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return nil, fmt.Errorf("%w: server chose extension %q that was not offered", ErrHandshake, ext)
	}
	if !stop() {
		// The context ended and its deadline-in-the-past may land after
		// the one we would clear here.
		return nil, fmt.Errorf("wsclient: %w", ctx.Err())
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("wsclient: %w", err)
	}
	return br, nil
}

func acceptKey(key string) string {
	sum := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func headerContainsToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// ctxErr prefers the context's error over the deadline error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
