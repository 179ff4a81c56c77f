package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// chatLine is a results.tsv line of a chat run.
func chatLine(scenario, server string, deliveries, p99 float64) string {
	return fmt.Sprintf("%s\t%s\t"+`{"mode":"chat","clients":100,"senders":1,"messages":200,"deliveries_per_s":%g,"latency_p99_ms":%g,"closed_by_server":{}}`,
		scenario, server, deliveries, p99)
}

var testOptions = chartOptions{highlight: []string{"chatroom", "chatroom-coalesce"}, category: "server"}

// sample has, in S1, three runs of melody, two of chatroom, one of naive,
// chatroom@HEAD~1 and a server that delivered nothing; S2 and an idle S5
// and echo S6 besides.
var sample = strings.Join([]string{
	chatLine("S1", "melody", 100, 5),
	chatLine("S1", "chatroom", 1000, 1),
	chatLine("S1", "melody", 300, 1),
	chatLine("S2", "gorillahub", 7, 7),
	chatLine("S1", "naive", 50, 40),
	chatLine("S1", "chatroom", 800, 2),
	chatLine("S1", "melody", 200, 3),
	chatLine("S1", "chatroom@HEAD~1", 450, 2.25),
	chatLine("S1", "stuck", 0, 0),
	chatLine("S5", "melody", 0, 0),
	"S6\techo\t" + `{"mode":"echo","clients":20,"closed_by_server":{}}`,
}, "\n")

// node is any XML element, for walking a parsed SVG.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []node     `xml:",any"`
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// all returns n and every element below it, in document order.
func (n node) all() []node {
	out := []node{n}
	for _, c := range n.Nodes {
		out = append(out, c.all()...)
	}
	return out
}

func (n node) texts() []string {
	var out []string
	for _, e := range n.all() {
		if e.XMLName.Local == "text" {
			out = append(out, e.Text)
		}
	}
	return out
}

// parseSVG parses svg strictly, as an XML processor would.
func parseSVG(t *testing.T, svg []byte) node {
	t.Helper()
	var root node
	d := xml.NewDecoder(bytes.NewReader(svg))
	d.Strict = true
	if err := d.Decode(&root); err != nil {
		t.Fatalf("the chart is not well-formed XML: %v\n%s", err, svg)
	}
	return root
}

func render(t *testing.T, in, scenario string) []byte {
	t.Helper()
	rs, err := readResults(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	svg, ok := renderChart(scenario, rs, testOptions)
	if !ok {
		t.Fatalf("no chart for %s", scenario)
	}
	return svg
}

func number(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestChartDrawsMedianBarsInInputOrderProportionally(t *testing.T) {
	root := parseSVG(t, render(t, sample, "S1"))
	servers := []string{"melody", "chatroom", "naive", "chatroom@HEAD~1", "stuck"}
	for _, panel := range []struct {
		class string
		// want are the medians over the runs, NaN for no bar.
		want   []float64
		labels []string
	}{
		{"deliveries", []float64{200, 900, 50, 450, 0}, []string{"200/s", "900/s", "50/s", "450/s", "0/s"}},
		{"p99", []float64{3, 1.5, 40, 2.25, math.NaN()}, []string{"3.00 ms", "1.50 ms", "40.00 ms", "2.25 ms", "no deliveries"}},
	} {
		t.Run(panel.class, func(t *testing.T) {
			var g node
			for _, e := range root.all() {
				if e.XMLName.Local == "g" && e.attr("class") == panel.class {
					g = e
				}
			}
			if g.XMLName.Local == "" {
				t.Fatalf("no <g class=%q>", panel.class)
			}
			var bars []node
			for _, e := range g.all() {
				if e.XMLName.Local == "rect" && strings.HasPrefix(e.attr("class"), "bar") {
					bars = append(bars, e)
				}
			}
			var wantServers []string
			var wantValues []float64
			for i, v := range panel.want {
				if !math.IsNaN(v) {
					wantServers, wantValues = append(wantServers, servers[i]), append(wantValues, v)
				}
			}
			if len(bars) != len(wantServers) {
				t.Fatalf("%d bars, want %d", len(bars), len(wantServers))
			}
			// Bars top to bottom in the input's order, each named by its
			// tooltip, highlighted when wsroom's, as long as its value
			// times one scale (the largest bar's width / value).
			scale := 0.0
			for i, b := range bars {
				if i > 0 && number(t, b.attr("y")) <= number(t, bars[i-1].attr("y")) {
					t.Errorf("bar %d is not below bar %d", i, i-1)
				}
				if b.attr("x") != bars[0].attr("x") {
					t.Errorf("bar %d starts at x=%s, bar 0 at %s", i, b.attr("x"), bars[0].attr("x"))
				}
				if len(b.Nodes) != 1 || !strings.HasPrefix(b.Nodes[0].Text, wantServers[i]+": ") {
					t.Errorf("bar %d is %v, want %s's", i, b.Nodes, wantServers[i])
				}
				scale = max(scale, number(t, b.attr("width"))/wantValues[i])
				wsroom := strings.HasPrefix(wantServers[i], "chatroom")
				if got := b.attr("class") == "bar wsroom" && b.attr("fill") == wsroomColor; got != wsroom {
					t.Errorf("%s highlighted: %v, want %v", wantServers[i], got, wsroom)
				}
			}
			for i, b := range bars {
				if w, want := number(t, b.attr("width")), wantValues[i]*scale; math.Abs(w-want) > 0.01 {
					t.Errorf("%s: width %v, want %v (value %v × %v px)", wantServers[i], w, want, wantValues[i], scale)
				}
			}
			texts := g.texts()
			for _, want := range slices.Concat(servers, panel.labels) {
				if !slices.Contains(texts, want) {
					t.Errorf("no text %q among %q", want, texts)
				}
			}
		})
	}
	texts := root.texts()
	for _, want := range []string{
		"S1: deliveries/s and p99 latency per server",
		"100 clients, 1 sender × 200 messages, median of 1 to 3 runs",
		"wsroom", "other servers",
		"deliveries per second, median over the runs",
		"p99 latency in milliseconds, median over the runs",
		"server",
	} {
		if !slices.Contains(texts, want) {
			t.Errorf("no text %q among %q", want, texts)
		}
	}
	if slices.Contains(texts, "gorillahub") {
		t.Errorf("S2's server in S1's chart")
	}
}

func TestChartIsSelfContainedSVG11(t *testing.T) {
	root := parseSVG(t, render(t, sample, "S1"))
	if root.XMLName.Space != "http://www.w3.org/2000/svg" || root.XMLName.Local != "svg" || root.attr("version") != "1.1" {
		t.Errorf("root %v version %q, want an SVG 1.1 <svg>", root.XMLName, root.attr("version"))
	}
	allowed := []string{"svg", "title", "desc", "g", "rect", "line", "text"}
	for _, e := range root.all() {
		if !slices.Contains(allowed, e.XMLName.Local) {
			t.Errorf("element <%s>, want only %v", e.XMLName.Local, allowed)
		}
		for _, a := range e.Attrs {
			if a.Name.Local == "href" || strings.Contains(a.Value, "url(") ||
				(a.Name.Local != "xmlns" && strings.Contains(a.Value, "://")) {
				t.Errorf("<%s %s=%q> refers to something outside the file", e.XMLName.Local, a.Name.Local, a.Value)
			}
		}
	}
}

func TestChartsAreDeterministic(t *testing.T) {
	var outputs [][]byte
	for range 2 {
		rs, err := readResults(strings.NewReader(sample))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := writeCharts(dir, rs, testOptions); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		// S5 delivered nothing and S6 is an echo scenario: no chart.
		if !slices.Equal(names, []string{"S1.svg", "S2.svg"}) {
			t.Fatalf("charts %v, want S1.svg and S2.svg", names)
		}
		var all []byte
		for _, name := range names {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		outputs = append(outputs, all)
	}
	if !bytes.Equal(outputs[0], outputs[1]) {
		t.Error("two renderings of the same input differ")
	}
}

func TestChartHighlightsEveryModeWithStarAndDrawsNoLegend(t *testing.T) {
	in := strings.Join([]string{
		chatLine("X1", "in-process", 700000, 0.5),
		chatLine("X1", "redis", 300000, 1.25),
	}, "\n")
	rs, err := readResults(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	svg, ok := renderChart("X1", rs, chartOptions{highlight: []string{"*"}, category: "mode"})
	if !ok {
		t.Fatal("no chart")
	}
	root := parseSVG(t, svg)
	bars := 0
	for _, e := range root.all() {
		if e.XMLName.Local == "rect" && strings.HasPrefix(e.attr("class"), "bar") {
			bars++
			if e.attr("class") != "bar wsroom" {
				t.Errorf("bar %v not highlighted", e.Nodes)
			}
		}
	}
	if bars != 4 {
		t.Errorf("%d bars, want 2 modes × 2 panels", bars)
	}
	texts := root.texts()
	if !slices.Contains(texts, "X1: deliveries/s and p99 latency per mode") || slices.Contains(texts, "other modes") {
		t.Errorf("want the mode title and no legend, got %q", texts)
	}
}

func TestChartsRejectBadInput(t *testing.T) {
	json := `{"mode":"chat","deliveries_per_s":1}`
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty file", "", "the input is empty"},
		{"four columns", "S1\tmelody\trun1\t" + json, "line 1: 4 tab-separated columns, want 3: SCENARIO, SERVER and a wsroom-load JSON line"},
		{"two columns", chatLine("S1", "melody", 1, 1) + "\nS1\t" + json, "line 2: 2 tab-separated columns, want 3"},
		{"header line", "scenario\tserver\tresult\n" + chatLine("S1", "melody", 1, 1), "line 1: column 3 is not a wsroom-load JSON line"},
		{"JSON without mode", "S1\tmelody\t" + `{"deliveries_per_s":1}`, `line 1: column 3 has mode "", want "chat" or "echo"`},
		{"echo only", "S6\techo\t" + `{"mode":"echo"}`, "none of S6 is a chat scenario with deliveries"},
		{"no deliveries", chatLine("S5", "melody", 0, 0), "none of S5 is a chat scenario with deliveries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "charts")
			rs, err := readResults(strings.NewReader(tc.in))
			if err == nil {
				err = writeCharts(dir, rs, testOptions)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("bad input left %d files in %s", len(entries), dir)
			}
		})
	}
}

func TestRunWritesChartsAfterTheTable(t *testing.T) {
	dir := t.TempDir()
	old := *chartsDir
	*chartsDir = dir
	t.Cleanup(func() { *chartsDir = old })
	var out strings.Builder
	if err := run(strings.NewReader(sample), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "| S1 | chatroom | 2 | 900 |") {
		t.Errorf("no table with -charts:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "S1.svg")); err != nil {
		t.Error(err)
	}
}

func TestChartFileNameKeepsOnlySafeBytes(t *testing.T) {
	for in, want := range map[string]string{"S1": "S1.svg", "X1 redis/a": "X1_redis_a.svg", "../S2": ".._S2.svg"} {
		if got := chartFileName(in); got != want {
			t.Errorf("chartFileName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTickAndValueLabels(t *testing.T) {
	for _, tc := range []struct {
		v, step, axisMax float64
		big              bool
		want             string
	}{
		{0, 500000, 2e6, true, "0"},
		{500000, 500000, 2e6, true, "0.5M"},
		{1e6, 500000, 2e6, true, "1M"},
		{400000, 200000, 8e5, true, "400k"},
		{5000, 1000, 5000, true, "5000"},
		{7.5, 2.5, 10, false, "7.5"},
		{0.75, 0.25, 1, false, "0.75"},
		{40, 10, 50, false, "40"},
	} {
		if got := tickLabel(tc.v, tc.step, tc.axisMax, tc.big); got != tc.want {
			t.Errorf("tickLabel(%v, %v, %v, %v) = %q, want %q", tc.v, tc.step, tc.axisMax, tc.big, got, tc.want)
		}
	}
	for v, want := range map[float64]string{0: "0", 12: "12", 999.5: "1,000", 1522884.4: "1,522,884", 100000: "100,000"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
	for largest, want := range map[float64]float64{0: 1, 47.62: 10, 1522884: 500000, 1.39: 0.5, 714579: 200000} {
		if got := niceStep(largest); got != want {
			t.Errorf("niceStep(%v) = %v, want %v", largest, got, want)
		}
	}
}
