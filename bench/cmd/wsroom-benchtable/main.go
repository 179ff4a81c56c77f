// Command wsroom-benchtable turns the results that run.sh collects into
// markdown tables: one row per scenario and server with the median of each
// metric over the runs, and ratios against melody in the same scenario.
// Chat scenarios share one table; echo scenarios (wsroom-load -mode echo,
// run.sh's S6) follow in a second one with their own columns.
//
// With -charts DIR it also draws, for each chat scenario with deliveries,
// DIR/SCENARIO.svg: horizontal bars of the median deliveries/s and the
// median p99 latency of each server, the medians the table shows.
//
// Input lines, on standard input, are "SCENARIO<TAB>SERVER<TAB>JSON", where
// JSON is one line printed by wsroom-load.
//
// Usage:
//
//	wsroom-benchtable [-baseline melody] [-charts DIR] [-highlight chatroom,chatroom-coalesce] [-category server] < results.tsv
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/wsroom/wsroom/bench/internal/load"
)

var (
	// baseline is the server every other is compared with.
	baseline  = flag.String("baseline", "melody", "the `server` every other is compared with")
	chartsDir = flag.String("charts", "", "also write one SVG chart per chat scenario into `DIR`")
	highlight = flag.String("highlight", "chatroom,chatroom-coalesce",
		"comma-separated `servers` whose bars are drawn as wsroom's (NAME@REV too); * for all")
	category = flag.String("category", "server", "what the charts' bars stand for, `word` of the axis title")
)

// column is one metric of a table: a number whose median over the runs is
// shown, or, when text is set, a text made from all the runs.
type column struct {
	header string
	value  func(load.Result) float64
	format string
	// ratio adds a "×baseline" column after this one.
	ratio bool
	// never shows a negative median (the load tool's -1) as "never".
	never bool
	text  func([]load.Result) string
}

// num is a numeric column.
func num(header string, value func(load.Result) float64, format string, ratio bool) column {
	return column{header: header, value: value, format: format, ratio: ratio}
}

// deliveriesColumn and p99Column are the chat metrics the charts draw too.
var (
	deliveriesColumn = num("deliveries/s", func(r load.Result) float64 { return r.DeliveriesPerSec }, "%.0f", true)
	p99Column        = num("p99 ms", func(r load.Result) float64 { return r.LatencyP99 }, "%.2f", true)
)

// chatColumns are the columns of the chat scenarios (S1..S5).
var chatColumns = []column{
	deliveriesColumn,
	num("p50 ms", func(r load.Result) float64 { return r.LatencyP50 }, "%.2f", false),
	p99Column,
	num("max ms", func(r load.Result) float64 { return r.LatencyMax }, "%.1f", false),
	num("lost", func(r load.Result) float64 { return float64(r.Lost) }, "%.0f", false),
	num("dup", func(r load.Result) float64 { return float64(r.Duplicate) }, "%.0f", false),
	num("out of order", func(r load.Result) float64 { return float64(r.OutOfOrder) }, "%.0f", false),
	num("disconnected", func(r load.Result) float64 { return float64(r.Disconnected) }, "%.0f", false),
	{header: "closed by server", text: closeCodes},
	num("reset by server", func(r load.Result) float64 { return float64(r.ResetByServer) }, "%.0f", false),
	{header: "silent cut ms", value: func(r load.Result) float64 { return deref(r.SilentCutAfter) }, format: "%.0f", never: true},
	{header: "cut by", text: func(runs []load.Result) string {
		return kinds(runs, func(r load.Result) *string { return r.SilentCutBy })
	}},
	num("join settle s", func(r load.Result) float64 { return r.JoinSettle }, "%.2f", false),
	num("server CPU s", func(r load.Result) float64 { return deref(r.ServerCPU) }, "%.2f", true),
	num("server peak RSS MiB", func(r load.Result) float64 { return deref(r.ServerRSSPeak) / 1024 }, "%.1f", true),
	num("RSS/conn KiB", func(r load.Result) float64 { return deref(r.ServerRSSPerConn) / 1024 }, "%.1f", false),
	num("goroutines", func(r load.Result) float64 { return deref(r.ServerGoroutines) }, "%.0f", false),
	num("tool CPU s", func(r load.Result) float64 { return r.ToolCPU }, "%.2f", false),
	num("timed out", func(r load.Result) float64 { return boolCount(r.TimedOut) }, "%.0f", false),
	num("stalled", func(r load.Result) float64 { return boolCount(r.Stalled) }, "%.0f", false),
}

// echoColumns are the columns of the echo scenarios (S6).
var echoColumns = []column{
	num("clients", func(r load.Result) float64 { return float64(r.Clients) }, "%.0f", false),
	num("size MiB", func(r load.Result) float64 { return float64(r.Size) / (1 << 20) }, "%.1f", false),
	num("read KiB/s", func(r load.Result) float64 { return r.ReadRate / 1024 }, "%.0f", false),
	num("full replies", func(r load.Result) float64 { return deref(r.FullReplies) }, "%.0f", false),
	{header: "closed by server", text: closeCodes},
	num("reset by server", func(r load.Result) float64 { return float64(r.ResetByServer) }, "%.0f", false),
	num("server cut", func(r load.Result) float64 { return deref(r.ServerCut) }, "%.0f", false),
	{header: "cut by", text: func(runs []load.Result) string {
		return kinds(runs, func(r load.Result) *string { return r.ServerCutBy })
	}},
	{header: "last cut s", value: func(r load.Result) float64 { return deref(r.ServerCutAfter) / 1e3 }, format: "%.1f", never: true},
	num("server RSS before MiB", func(r load.Result) float64 { return deref(r.ServerRSSBefore) / 1024 }, "%.1f", false),
	num("server peak RSS MiB", func(r load.Result) float64 { return deref(r.ServerRSSPeak) / 1024 }, "%.1f", false),
	num("server RSS after MiB", func(r load.Result) float64 { return deref(r.ServerRSSAfter) / 1024 }, "%.1f", false),
	num("server CPU s", func(r load.Result) float64 { return deref(r.ServerCPU) }, "%.2f", false),
	num("elapsed s", func(r load.Result) float64 { return r.Elapsed }, "%.1f", false),
	num("timed out", func(r load.Result) float64 { return boolCount(r.TimedOut) }, "%.0f", false),
}

// closeCodes shows the median count of each close code over the runs, as
// "1013×3 1001×1", or "-" when no run had a close frame.
func closeCodes(runs []load.Result) string {
	codes := map[int]bool{}
	for _, r := range runs {
		for code := range r.ClosedByServer {
			codes[code] = true
		}
	}
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(codes)) {
		m := median(runs, func(r load.Result) float64 { return float64(r.ClosedByServer[code]) })
		if m > 0 {
			parts = append(parts, strconv.Itoa(code)+"×"+strconv.FormatFloat(m, 'f', -1, 64))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// kinds shows the distinct non-empty values over the runs, joined by "/",
// or "-".
func kinds(runs []load.Result, value func(load.Result) *string) string {
	var seen []string
	for _, r := range runs {
		if v := value(r); v != nil && *v != "" && !slices.Contains(seen, *v) {
			seen = append(seen, *v)
		}
	}
	if len(seen) == 0 {
		return "-"
	}
	return strings.Join(seen, "/")
}

// deref returns *p, or NaN (shown as "-") when the run did not measure it.
func deref[T int | int64 | float64](p *T) float64 {
	if p == nil {
		return math.NaN()
	}
	return float64(*p)
}

func boolCount(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

type key struct{ scenario, server string }

func main() {
	flag.Parse()
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wsroom-benchtable:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	rs, err := readResults(in)
	if err != nil {
		return err
	}
	var chat, echo []string
	for _, scenario := range rs.scenarios {
		if isEcho(rs.runs, scenario, rs.servers) {
			echo = append(echo, scenario)
		} else {
			chat = append(chat, scenario)
		}
	}
	if len(chat) > 0 {
		table(out, chatColumns, chat, rs.servers, rs.runs)
	}
	if len(echo) > 0 {
		if len(chat) > 0 {
			fmt.Fprintln(out)
		}
		table(out, echoColumns, echo, rs.servers, rs.runs)
	}
	if *chartsDir == "" {
		return nil
	}
	return writeCharts(*chartsDir, rs, chartOptions{
		highlight: strings.Split(*highlight, ","),
		category:  *category,
	})
}

// results are the runs of a results file by scenario and server, with the
// scenarios and the servers in the order they first appear.
type results struct {
	runs      map[key][]load.Result
	scenarios []string
	servers   []string
}

// readResults reads "SCENARIO<TAB>SERVER<TAB>JSON" lines. An empty input
// is no error: a table of nothing is empty.
func readResults(in io.Reader) (results, error) {
	rs := results{runs: map[key][]load.Result{}}
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 1<<20)
	for lineNo := 1; sc.Scan(); lineNo++ {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 3 {
			return results{}, fmt.Errorf("line %d: %d tab-separated columns, want 3: SCENARIO, SERVER and a wsroom-load JSON line",
				lineNo, len(fields))
		}
		var r load.Result
		if err := json.Unmarshal([]byte(fields[2]), &r); err != nil {
			return results{}, fmt.Errorf("line %d: column 3 is not a wsroom-load JSON line: %w", lineNo, err)
		}
		if r.Mode != load.ModeChat && r.Mode != load.ModeEcho {
			return results{}, fmt.Errorf("line %d: column 3 has mode %q, want %q or %q: not a wsroom-load JSON line",
				lineNo, r.Mode, load.ModeChat, load.ModeEcho)
		}
		k := key{fields[0], fields[1]}
		rs.runs[k] = append(rs.runs[k], r)
		if !slices.Contains(rs.scenarios, k.scenario) {
			rs.scenarios = append(rs.scenarios, k.scenario)
		}
		if !slices.Contains(rs.servers, k.server) {
			rs.servers = append(rs.servers, k.server)
		}
	}
	if err := sc.Err(); err != nil {
		return results{}, err
	}
	return rs, nil
}

// isEcho says whether a scenario's runs are echo-mode runs.
func isEcho(results map[key][]load.Result, scenario string, servers []string) bool {
	for _, server := range servers {
		for _, r := range results[key{scenario, server}] {
			return r.Mode == load.ModeEcho
		}
	}
	return false
}

// table prints one markdown table of the given scenarios.
func table(out io.Writer, columns []column, scenarios, servers []string, results map[key][]load.Result) {
	header := []string{"scenario", "server", "runs"}
	for _, c := range columns {
		header = append(header, c.header)
		if c.ratio {
			header = append(header, "×"+*baseline)
		}
	}
	fmt.Fprintln(out, "| "+strings.Join(header, " | ")+" |")
	fmt.Fprintln(out, "|"+strings.Repeat(" --- |", len(header)))
	for _, scenario := range scenarios {
		base, haveBase := results[key{scenario, *baseline}]
		for _, server := range servers {
			runs, ok := results[key{scenario, server}]
			if !ok {
				continue
			}
			row := []string{scenario, server, fmt.Sprint(len(runs))}
			for _, c := range columns {
				if c.text != nil {
					row = append(row, c.text(runs))
					continue
				}
				m := median(runs, c.value)
				if c.never && m < 0 {
					row = append(row, "never")
					continue
				}
				row = append(row, format(c.format, m))
				if c.ratio {
					row = append(row, ratio(m, haveBase, base, c.value))
				}
			}
			fmt.Fprintln(out, "| "+strings.Join(row, " | ")+" |")
		}
	}
}

func ratio(m float64, haveBase bool, base []load.Result, value func(load.Result) float64) string {
	if !haveBase {
		return "n/a"
	}
	b := median(base, value)
	if b == 0 || math.IsNaN(b) || math.IsNaN(m) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", m/b)
}

func format(verb string, v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf(verb, v)
}

// median returns the median of the runs' values; NaN values (not measured)
// sort first and win only when most runs lack the value.
func median(runs []load.Result, value func(load.Result) float64) float64 {
	vs := make([]float64, len(runs))
	for i, r := range runs {
		vs[i] = value(r)
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}
