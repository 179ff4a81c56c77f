package load

// Result is the outcome of one run, printed by wsroom-load as one JSON line.
// Times are seconds and latencies milliseconds unless the name says
// otherwise. Server fields are present only when Config.ServerPID is set.
type Result struct {
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
	// run closed it.
	Disconnected int64 `json:"disconnected"`

	// SendDuration runs from the first send to the last delivery.
	SendDuration     float64 `json:"send_s"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	LatencyP50       float64 `json:"latency_p50_ms"`
	LatencyP99       float64 `json:"latency_p99_ms"`
	LatencyMax       float64 `json:"latency_max_ms"`

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
