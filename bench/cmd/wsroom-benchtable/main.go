// Command wsroom-benchtable turns the results that run.sh collects into a
// markdown table: one row per scenario and server with the median of each
// metric over the runs, and ratios against melody in the same scenario.
//
// Input lines, on standard input, are "SCENARIO<TAB>SERVER<TAB>JSON", where
// JSON is one line printed by wsroom-load.
//
// Usage:
//
//	wsroom-benchtable [-baseline melody] < results.tsv
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/wsroom/wsroom/bench/internal/load"
)

// baseline is the server every other is compared with.
var baseline = flag.String("baseline", "melody", "the `server` every other is compared with")

// column is one metric of the table.
type column struct {
	header string
	value  func(load.Result) float64
	format string
	// ratio adds a "×baseline" column after this one.
	ratio bool
}

var columns = []column{
	{"deliveries/s", func(r load.Result) float64 { return r.DeliveriesPerSec }, "%.0f", true},
	{"p50 ms", func(r load.Result) float64 { return r.LatencyP50 }, "%.2f", false},
	{"p99 ms", func(r load.Result) float64 { return r.LatencyP99 }, "%.2f", true},
	{"max ms", func(r load.Result) float64 { return r.LatencyMax }, "%.1f", false},
	{"lost", func(r load.Result) float64 { return float64(r.Lost) }, "%.0f", false},
	{"dup", func(r load.Result) float64 { return float64(r.Duplicate) }, "%.0f", false},
	{"out of order", func(r load.Result) float64 { return float64(r.OutOfOrder) }, "%.0f", false},
	{"disconnected", func(r load.Result) float64 { return float64(r.Disconnected) }, "%.0f", false},
	{"join settle s", func(r load.Result) float64 { return r.JoinSettle }, "%.2f", false},
	{"server CPU s", func(r load.Result) float64 { return deref(r.ServerCPU) }, "%.2f", true},
	{"server peak RSS MiB", func(r load.Result) float64 { return deref(r.ServerRSSPeak) / 1024 }, "%.1f", true},
	{"RSS/conn KiB", func(r load.Result) float64 { return deref(r.ServerRSSPerConn) / 1024 }, "%.1f", false},
	{"goroutines", func(r load.Result) float64 { return deref(r.ServerGoroutines) }, "%.0f", false},
	{"tool CPU s", func(r load.Result) float64 { return r.ToolCPU }, "%.2f", false},
	{"timed out", func(r load.Result) float64 { return boolCount(r.TimedOut) }, "%.0f", false},
	{"stalled", func(r load.Result) float64 { return boolCount(r.Stalled) }, "%.0f", false},
}

// deref returns *p, or NaN (shown as "-") when the run did not measure it.
func deref[T int64 | float64](p *T) float64 {
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
	results := map[key][]load.Result{}
	var scenarios, servers []string
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 1<<20)
	for lineNo := 1; sc.Scan(); lineNo++ {
		fields := strings.SplitN(sc.Text(), "\t", 3)
		if len(fields) != 3 {
			return fmt.Errorf("line %d: want SCENARIO<TAB>SERVER<TAB>JSON", lineNo)
		}
		var r load.Result
		if err := json.Unmarshal([]byte(fields[2]), &r); err != nil {
			return fmt.Errorf("line %d: %w", lineNo, err)
		}
		k := key{fields[0], fields[1]}
		results[k] = append(results[k], r)
		if !slices.Contains(scenarios, k.scenario) {
			scenarios = append(scenarios, k.scenario)
		}
		if !slices.Contains(servers, k.server) {
			servers = append(servers, k.server)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}

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
				m := median(runs, c.value)
				row = append(row, format(c.format, m))
				if c.ratio {
					row = append(row, ratio(m, haveBase, base, c.value))
				}
			}
			fmt.Fprintln(out, "| "+strings.Join(row, " | ")+" |")
		}
	}
	return nil
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
