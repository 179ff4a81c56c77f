package load

// Result is the outcome of one run, printed by wsroom-load as one JSON line.
// Times are seconds and latencies milliseconds unless the name says
// otherwise. Server fields are present only when Config.ServerPID is set.
type Result struct {
	Mode     string  `json:"mode"`
	Client   string  `json:"client"`
	URL      string  `json:"url"`
	Clients  int     `json:"clients"`
	Senders  int     `json:"senders"`
	Messages int     `json:"messages"`
	Rate     float64 `json:"rate"`
	Window   int     `json:"window"`
	Size     int     `json:"size"`
	Silent   int     `json:"silent"`

	// Connect is the time from the start to the last finished dial.
	Connect         float64 `json:"connect_s"`
	Connected       int     `json:"connected"`
	ConnectFailures int     `json:"connect_failures"`
	// JoinSettle is the time from the start until every reading client saw
	// the last client's join (or left); JoinSettled says whether that
	// happened before the join timeout.
	JoinSettle     float64 `json:"join_settle_s"`
	JoinSettled    bool    `json:"join_settled"`
	JoinDeliveries int64   `json:"join_deliveries"`

	// Sent counts messages written by senders; Expected is Sent times the
	// reading clients connected when sending began.
	Sent      int64 `json:"sent"`
	Expected  int64 `json:"expected"`
	Received  int64 `json:"received"`
	Lost      int64 `json:"lost"`
	Duplicate int64 `json:"duplicated"`
	// OutOfOrder counts deliveries older than one already received from the
	// same sender.
	OutOfOrder int64 `json:"out_of_order"`
	// ReplyBeforeCopy counts personal replies that reached a sender before
	// its own broadcast copy of the same message.
	Replies         int64 `json:"replies"`
	ReplyBeforeCopy int64 `json:"reply_before_copy"`
	AckTimeouts     int64 `json:"ack_timeouts"`
	// Disconnected counts reading clients whose connection ended before the
	// run closed it: ClosedByServer (summed) + ResetByServer +
	// ClientFailures.
	Disconnected int64 `json:"disconnected"`
	// ClosedByServer counts those that got a close frame, by close code
	// (1005 for a close frame without one); the JSON keys are the codes.
	ClosedByServer map[int]int64 `json:"closed_by_server"`
	// ResetByServer counts those whose connection ended without a close
	// frame: EOF (between or inside frames) or a TCP reset.
	ResetByServer int64 `json:"reset_by_server"`
	// ClientFailures counts those this tool gave up on: a protocol
	// violation, a message over its size limit, another I/O error.
	ClientFailures int64 `json:"client_failures"`

	// SilentCut counts the silent clients the server cut (closed or
	// reset) before the run closed them. Present with Silent > 0.
	SilentCut *int `json:"silent_cut,omitempty"`
	// SilentCutAfter is the longest time, over the silent clients, from
	// the first message sent to the moment the server cut that client's
	// connection (to the 20 ms of polling; 0 if that happened before the
	// first send), or -1 if a silent client was not cut within the run.
	SilentCutAfter *float64 `json:"silent_cut_after_ms,omitempty"`
	// SilentCutBy says how: "fin" (the server closed the connection; its
	// FIN may still be queued behind data the client never took), "rst"
	// (reset, or the server's end is gone), "fin+rst" when the silent
	// clients differ, "" when none was cut.
	SilentCutBy *string `json:"silent_cut_by,omitempty"`

	// ModeEcho only: ReadRate and ReceiveBuffer as configured, the clients
	// whose whole reply arrived (FullReplies), and the bytes all clients
	// read from their sockets, handshakes included (ReadBytes).
	ReadRate      float64 `json:"read_rate,omitempty"`
	ReceiveBuffer int     `json:"rcvbuf,omitempty"`
	FullReplies   *int64  `json:"full_replies,omitempty"`
	ReadBytes     *int64  `json:"read_bytes,omitempty"`
	// ModeEcho only, from the same TCP probe as the silent clients' (so
	// also when the close is queued behind reply bytes the slow client has
	// not read yet): ServerCut counts the clients whose connection the
	// server closed or reset, ServerCutAfter is the longest time from the
	// first send to such a cut (-1 if none), ServerCutBy as SilentCutBy.
	ServerCut      *int     `json:"server_cut,omitempty"`
	ServerCutAfter *float64 `json:"server_cut_after_ms,omitempty"`
	ServerCutBy    *string  `json:"server_cut_by,omitempty"`

	// SendDuration runs from the first send to the last delivery.
	SendDuration     float64 `json:"send_s"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	LatencyP50       float64 `json:"latency_p50_ms"`
	LatencyP99       float64 `json:"latency_p99_ms"`
	LatencyMax       float64 `json:"latency_max_ms"`
	// With several URLs, the quantiles of the readers of each, in the
	// order of -url (client i dials URL i modulo their number).
	LatencyP50ByURL []float64 `json:"latency_p50_ms_by_url,omitempty"`
	LatencyP99ByURL []float64 `json:"latency_p99_ms_by_url,omitempty"`

	ToolCPU float64 `json:"tool_cpu_s"`

	ServerRSSBefore  *int64   `json:"server_rss_before_kib,omitempty"`
	ServerRSSAfter   *int64   `json:"server_rss_after_kib,omitempty"`
	ServerRSSPeak    *int64   `json:"server_rss_peak_kib,omitempty"`
	ServerRSSPerConn *float64 `json:"server_rss_per_conn_bytes,omitempty"`
	ServerCPU        *float64 `json:"server_cpu_s,omitempty"`
	ServerGoroutines *int64   `json:"server_goroutines,omitempty"`
	TimedOut         bool     `json:"timed_out"`
	// Stalled says the run was ended because nothing was delivered for the
	// drain timeout while the senders were still sending.
	Stalled    bool     `json:"stalled"`
	Elapsed    float64  `json:"elapsed_s"`
	ErrorCount int64    `json:"error_count"`
	Errors     []string `json:"errors,omitempty"`
}
