package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/wsroom/wsroom/bench/internal/load"
)

// chartOptions say how the charts are drawn.
type chartOptions struct {
	// highlight lists the servers drawn as wsroom's; a server NAME@REV
	// counts as NAME, and "*" highlights every server.
	highlight []string
	// category names what a bar stands for ("server", "mode").
	category string
}

func (o chartOptions) highlighted(server string) bool {
	name, _, _ := strings.Cut(server, "@")
	return slices.Contains(o.highlight, "*") || slices.Contains(o.highlight, name)
}

// writeCharts writes DIR/SCENARIO.svg for each chat scenario in which some
// server delivered messages, and fails when there is none: charts were
// asked for and none could be drawn.
func writeCharts(dir string, rs results, opts chartOptions) error {
	if len(rs.scenarios) == 0 {
		return errors.New("charts: the input is empty (no SCENARIO<TAB>SERVER<TAB>JSON line)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("charts: %w", err)
	}
	written := 0
	for _, scenario := range rs.scenarios {
		svg, ok := renderChart(scenario, rs, opts)
		if !ok {
			continue
		}
		path := filepath.Join(dir, chartFileName(scenario))
		if err := os.WriteFile(path, svg, 0o644); err != nil {
			return fmt.Errorf("charts: %w", err)
		}
		written++
	}
	if written == 0 {
		return fmt.Errorf("charts: none of %s is a chat scenario with deliveries (echo and idle scenarios have no chart)",
			strings.Join(rs.scenarios, ", "))
	}
	return nil
}

// chartFileName is SCENARIO.svg, with every byte but letters, digits, '.',
// '_' and '-' replaced by '_'.
func chartFileName(scenario string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, scenario) + ".svg"
}

// bar is one server's median in a panel; a bar without a value (NaN) is
// drawn as its note alone.
type bar struct {
	server    string
	value     float64
	label     string
	note      string
	highlight bool
}

// panel is one metric of a chart: a heading, an axis title and a bar per
// server.
type panel struct {
	class, heading, axisTitle string
	// big: the axis counts in k and M rather than in decimals.
	big  bool
	bars []bar
}

// Layout, in pixels. Text widths are estimated, since the SVG names no
// font file: 7 px per character of 12 px sans-serif is on the safe side
// for the digits and Latin names the charts show.
const (
	minChartWidth = 720
	minPlotWidth  = 240
	margin        = 16
	charWidth     = 7.0
	rowPitch      = 24
	barHeight     = 16
	wsroomColor   = "#1f6feb"
	otherColor    = "#9ca3af"
	gridColor     = "#e5e7eb"
	textColor     = "#1f2328"
	mutedColor    = "#57606a"
)

// renderChart draws one scenario's chart: deliveries/s above p99 latency,
// one bar per server in the order of the input. ok is false for echo
// scenarios and for scenarios in which no server delivered anything (S5's
// idle clients).
func renderChart(scenario string, rs results, opts chartOptions) (svg []byte, ok bool) {
	if isEcho(rs.runs, scenario, rs.servers) {
		return nil, false
	}
	deliveries := panel{class: "deliveries", heading: "Throughput (more is better)",
		axisTitle: "deliveries per second, median over the runs", big: true}
	p99 := panel{class: "p99", heading: "Latency, 99th percentile (less is better)",
		axisTitle: "p99 latency in milliseconds, median over the runs"}
	var servers []string
	delivered := false
	minRuns, maxRuns := math.MaxInt, 0
	for _, server := range rs.servers {
		runs, ran := rs.runs[key{scenario, server}]
		if !ran {
			continue
		}
		servers = append(servers, server)
		minRuns, maxRuns = min(minRuns, len(runs)), max(maxRuns, len(runs))
		hl := opts.highlighted(server)
		d := median(runs, deliveriesColumn.value)
		delivered = delivered || d > 0
		deliveries.bars = append(deliveries.bars, bar{server: server, value: d, label: thousands(d) + "/s", highlight: hl})
		// A server that delivered nothing has no latency, not a latency of 0.
		if d > 0 {
			l := median(runs, p99Column.value)
			p99.bars = append(p99.bars, bar{server: server, value: l, label: format(p99Column.format, l) + " ms", highlight: hl})
		} else {
			p99.bars = append(p99.bars, bar{server: server, value: math.NaN(), note: "no deliveries", highlight: hl})
		}
	}
	if !delivered {
		return nil, false
	}

	first := rs.runs[key{scenario, servers[0]}][0]
	title := fmt.Sprintf("%s: deliveries/s and p99 latency per %s", scenario, opts.category)
	subtitle := describeLoad(first) + ", " + describeRuns(minRuns, maxRuns)

	labelWidth := 0.0
	valueWidth := 0.0
	for _, p := range []panel{deliveries, p99} {
		for _, b := range p.bars {
			labelWidth = max(labelWidth, textWidth(b.server))
			valueWidth = max(valueWidth, textWidth(b.label+b.note))
		}
	}
	plotX := margin + 20 + labelWidth + 8
	width := max(minChartWidth, math.Ceil(plotX+minPlotWidth+6+valueWidth+margin))
	plotWidth := width - plotX - 6 - valueWidth - margin

	// The legend is drawn only when there is something to tell apart.
	anyWsroom, anyOther := false, false
	for _, b := range deliveries.bars {
		anyWsroom, anyOther = anyWsroom || b.highlight, anyOther || !b.highlight
	}

	c := &canvas{}
	y := 28.0
	c.text(margin, y, title, `font-size="16" font-weight="bold"`)
	y += 20
	c.text(margin, y, subtitle, `fill="`+mutedColor+`"`)
	if anyWsroom && anyOther {
		y += 22
		legendX := float64(margin)
		c.rect(legendX, y-10, 12, 12, `fill="`+wsroomColor+`"`)
		c.text(legendX+16, y, "wsroom", `font-weight="bold"`)
		legendX += 16 + textWidth("wsroom") + 16
		c.rect(legendX, y-10, 12, 12, `fill="`+otherColor+`"`)
		c.text(legendX+16, y, "other "+opts.category+"s", "")
	}
	y += 16
	for _, p := range []panel{deliveries, p99} {
		y = c.panel(p, opts.category, plotX, plotWidth, y)
	}

	var out bytes.Buffer
	out.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&out, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%s" height="%s" viewBox="0 0 %[1]s %[2]s" font-family="Helvetica, Arial, sans-serif" font-size="12" fill="%s">`+"\n",
		px(width), px(y), textColor)
	fmt.Fprintf(&out, "<title>%s</title>\n<desc>%s</desc>\n", escape(title), escape(subtitle))
	fmt.Fprintf(&out, `<rect width="%s" height="%s" fill="#ffffff"/>`+"\n", px(width), px(y))
	out.Write(c.buf.Bytes())
	out.WriteString("</svg>\n")
	return out.Bytes(), true
}

// describeLoad says what load a scenario's runs put on the servers.
func describeLoad(r load.Result) string {
	parts := []string{thousands(float64(r.Clients)) + " clients"}
	senders := "senders"
	if r.Senders == 1 {
		senders = "sender"
	}
	parts = append(parts, fmt.Sprintf("%d %s × %s messages", r.Senders, senders, thousands(float64(r.Messages))))
	if r.Rate > 0 {
		parts = append(parts, strconv.FormatFloat(r.Rate, 'f', -1, 64)+"/s each")
	}
	if r.Size > 0 {
		parts = append(parts, thousands(float64(r.Size))+" bytes each")
	}
	if r.Silent > 0 {
		parts = append(parts, fmt.Sprintf("%d never reading", r.Silent))
	}
	return strings.Join(parts, ", ")
}

func describeRuns(minRuns, maxRuns int) string {
	switch {
	case minRuns != maxRuns:
		return fmt.Sprintf("median of %d to %d runs", minRuns, maxRuns)
	case minRuns == 1:
		return "1 run"
	}
	return fmt.Sprintf("median of %d runs", minRuns)
}

// canvas collects SVG elements.
type canvas struct{ buf bytes.Buffer }

func (c *canvas) text(x, y float64, s, attrs string) {
	fmt.Fprintf(&c.buf, `<text x="%s" y="%s"%s>%s</text>`+"\n", px(x), px(y), prefixSpace(attrs), escape(s))
}

func (c *canvas) rect(x, y, w, h float64, attrs string) {
	fmt.Fprintf(&c.buf, `<rect x="%s" y="%s" width="%s" height="%s"%s/>`+"\n", px(x), px(y), px(w), px(h), prefixSpace(attrs))
}

func (c *canvas) line(x1, y1, x2, y2 float64, color string) {
	fmt.Fprintf(&c.buf, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1"/>`+"\n",
		px(x1), px(y1), px(x2), px(y2), color)
}

// panel draws p from y down and returns the y below it. The axis runs
// from 0 to a round number at or above the largest value, so every bar's
// length is its value times the same scale.
func (c *canvas) panel(p panel, category string, plotX, plotWidth, y float64) float64 {
	fmt.Fprintf(&c.buf, `<g class="%s">`+"\n", p.class)
	y += 20
	c.text(margin, y, p.heading, `font-size="14" font-weight="bold"`)
	y += 10
	top := y
	bottom := top + float64(len(p.bars))*rowPitch

	largest := 0.0
	for _, b := range p.bars {
		if !math.IsNaN(b.value) {
			largest = max(largest, b.value)
		}
	}
	step := niceStep(largest)
	axisMax := step * math.Ceil(largest/step)
	if axisMax == 0 {
		axisMax = step
	}
	scale := plotWidth / axisMax
	for i := 0; float64(i)*step <= axisMax*(1+1e-9); i++ {
		v := float64(i) * step
		x := plotX + v*scale
		color := gridColor
		if i == 0 {
			color = mutedColor
		}
		c.line(x, top, x, bottom, color)
		c.text(x, bottom+14, tickLabel(v, step, axisMax, p.big), `text-anchor="middle" fill="`+mutedColor+`"`)
	}
	c.text(plotX+plotWidth/2, bottom+32, p.axisTitle, `text-anchor="middle"`)
	mid := (top + bottom) / 2
	fmt.Fprintf(&c.buf, `<text x="%s" y="%s" text-anchor="middle" transform="rotate(-90 %[1]s %[2]s)">%s</text>`+"\n",
		px(margin+8), px(mid), escape(category))

	for i, b := range p.bars {
		rowTop := top + float64(i)*rowPitch + (rowPitch-barHeight)/2
		baseline := rowTop + barHeight/2 + 4
		nameAttrs := `text-anchor="end"`
		if b.highlight {
			nameAttrs += ` font-weight="bold"`
		}
		c.text(plotX-8, baseline, b.server, nameAttrs)
		if math.IsNaN(b.value) {
			c.text(plotX+6, baseline, b.note, `fill="`+mutedColor+`" font-style="italic"`)
			continue
		}
		w := b.value * scale
		class, color := "bar", otherColor
		if b.highlight {
			class, color = "bar wsroom", wsroomColor
		}
		fmt.Fprintf(&c.buf, `<rect class="%s" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s: %s</title></rect>`+"\n",
			class, px(plotX), px(rowTop), px(w), px(barHeight), color, escape(b.server), escape(b.label))
		valueAttrs := `class="value"`
		if b.highlight {
			valueAttrs += ` font-weight="bold"`
		}
		c.text(plotX+w+6, baseline, b.label, valueAttrs)
	}
	c.buf.WriteString("</g>\n")
	return bottom + 40
}

// niceStep is the tick step for an axis up to largest: 1, 2, 2.5 or 5
// times a power of ten, giving 3 to 6 ticks past 0.
func niceStep(largest float64) float64 {
	if !(largest > 0) || math.IsInf(largest, 0) {
		return 1
	}
	raw := largest / 5
	magnitude := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, f := range []float64{1, 2, 2.5, 5} {
		if f*magnitude >= raw {
			return f * magnitude
		}
	}
	return 10 * magnitude
}

// tickLabel shows v with as many decimals as step needs and no trailing
// zeros; big axes (up to axisMax) count in k and M.
func tickLabel(v, step, axisMax float64, big bool) string {
	if v == 0 {
		return "0"
	}
	suffix := ""
	if big {
		switch {
		case axisMax >= 1e6:
			v, step, suffix = v/1e6, step/1e6, "M"
		case axisMax >= 1e4:
			v, step, suffix = v/1e3, step/1e3, "k"
		}
	}
	decimals := 0
	for scaled := step; decimals < 6 && math.Abs(scaled-math.Round(scaled)) > 1e-9; scaled *= 10 {
		decimals++
	}
	unit := math.Pow(10, float64(decimals))
	return strconv.FormatFloat(math.Round(v*unit)/unit, 'f', -1, 64) + suffix
}

// thousands shows v rounded to a whole number, with commas between
// groups of three digits.
func thousands(v float64) string {
	digits := strconv.FormatFloat(math.Abs(math.Round(v)), 'f', 0, 64)
	var b strings.Builder
	if v <= -0.5 {
		b.WriteByte('-')
	}
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}

// px shows a coordinate rounded to 0.01 px, without trailing zeros.
func px(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

func textWidth(s string) float64 {
	return float64(len([]rune(s))) * charWidth
}

func escape(s string) string {
	var b strings.Builder
	// xml.EscapeText fails only when the writer does.
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func prefixSpace(attrs string) string {
	if attrs == "" {
		return ""
	}
	return " " + attrs
}
