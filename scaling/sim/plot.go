package sim

import (
	"bytes"
	"fmt"
	"html"
	"math"
)

// The plot's layout, in pixels.
const (
	plotWidth   = 960.0
	plotPanelH  = 120.0
	plotGap     = 28.0
	plotLeft    = 60.0
	plotRight   = 20.0
	plotScatter = 300.0
)

// plotScales are the axes every panel shares.
type plotScales struct {
	tMax, aMax, qMax, rMax float64
	arr                    []minute
}

// Plot renders an SVG: one panel per policy with arrivals per minute (grey
// area), queue depth (red) and billed replicas (blue, left axis), then the
// cost-versus-attainment points of every policy.
func Plot(rs []Result, title string) []byte {
	var b bytes.Buffer
	height := 40 + float64(len(rs))*(plotPanelH+plotGap) + plotScatter + 60
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", plotWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", plotLeft, html.EscapeString(title))
	sc := scalesOf(rs)
	for i, r := range rs {
		plotPanel(&b, r, 40+float64(i)*(plotPanelH+plotGap), sc)
	}
	legendY := 40 + float64(len(rs))*(plotPanelH+plotGap) - 8
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#444">x: minutes · blue: billed replicas (left axis) · red: queue depth (max %.0f) · grey: arrivals per minute (max %.0f)</text>`+"\n", plotLeft, legendY, sc.qMax, sc.aMax)
	plotCostAttainment(&b, rs, legendY+30)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func scalesOf(rs []Result) plotScales {
	sc := plotScales{tMax: 1, aMax: 1, qMax: 1, rMax: 1, arr: perMinute(rs)}
	for _, r := range rs {
		for _, p := range r.Timeline {
			sc.tMax, sc.qMax, sc.rMax = max(sc.tMax, p.T), max(sc.qMax, float64(p.Queue)), max(sc.rMax, float64(p.Replicas))
		}
	}
	for _, a := range sc.arr {
		sc.aMax = max(sc.aMax, a.v)
	}
	sc.rMax = niceCeil(sc.rMax)
	return sc
}

// plotPanel draws one policy's timeline in the panel whose top is at top.
func plotPanel(b *bytes.Buffer, r Result, top float64, sc plotScales) {
	pw := plotWidth - plotLeft - plotRight
	x := func(t float64) float64 { return plotLeft + pw*t/sc.tMax }
	y := func(v, vmax float64) float64 { return top + plotPanelH - plotPanelH*v/vmax }
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", plotLeft, top, pw, plotPanelH)
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-weight="bold">%s</text><text x="%.0f" y="%.0f" fill="#444">attainment %.3f · %.1f replica-h · $%.2f · %.2f× oracle</text>`+"\n",
		plotLeft, top-5, html.EscapeString(r.Policy), plotLeft+110, top-5, r.SLOAttainment, r.ReplicaHours, r.CostUSD, r.CostVsOracle)
	// arrivals area
	var pts bytes.Buffer
	fmt.Fprintf(&pts, "%.0f,%.0f ", x(0), y(0, 1))
	for _, a := range sc.arr {
		fmt.Fprintf(&pts, "%.0f,%.0f %.0f,%.0f ", x(a.t), y(a.v, sc.aMax), x(a.t+60), y(a.v, sc.aMax))
	}
	fmt.Fprintf(&pts, "%.0f,%.0f", x(sc.tMax), y(0, 1))
	fmt.Fprintf(b, `<polygon points="%s" fill="#ddd"/>`+"\n", pts.String())
	line := func(get func(Point) float64, vmax float64, color string) {
		var l bytes.Buffer
		for j, p := range r.Timeline {
			if j > 0 {
				fmt.Fprintf(&l, "%.0f,%.0f ", x(p.T), y(get(r.Timeline[j-1]), vmax))
			}
			fmt.Fprintf(&l, "%.0f,%.0f ", x(p.T), y(get(p), vmax))
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.3"/>`+"\n", l.String(), color)
	}
	line(func(p Point) float64 { return float64(p.Queue) }, sc.qMax, "#d62728")
	line(func(p Point) float64 { return float64(p.Replicas) }, sc.rMax, "#1f5fbf")
	for _, v := range []float64{0, sc.rMax / 2, sc.rMax} {
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" text-anchor="end" fill="#1f5fbf">%.0f</text>`+"\n", plotLeft-4, y(v, sc.rMax)+4, v)
	}
	for t := 0.0; t <= sc.tMax; t += 600 {
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#666">%.0f</text>`+"\n", x(t), top+plotPanelH+12, t/60)
	}
}

// plotCostAttainment draws every policy's cost against its attainment, the
// box's top at top.
func plotCostAttainment(b *bytes.Buffer, rs []Result, top float64) {
	sw, sh := (plotWidth-plotLeft-plotRight)/2, plotScatter-40
	cMax := 0.0
	aMin := 1.0
	for _, r := range rs {
		cMax = max(cMax, r.CostUSD)
		aMin = min(aMin, r.SLOAttainment)
	}
	cMax = niceCeil(cMax)
	aMin = math.Floor(aMin*20) / 20
	if aMin >= 1 {
		aMin = 0.95
	}
	sx := func(c float64) float64 { return plotLeft + sw*c/cMax }
	sy := func(a float64) float64 { return top + sh - sh*(a-aMin)/(1-aMin) }
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", plotLeft, top, sw, sh)
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-weight="bold">cost (USD) vs SLO attainment</text>`+"\n", plotLeft, top-6)
	for _, a := range []float64{aMin, (aMin + 1) / 2, 1} {
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" text-anchor="end">%.3f</text>`+"\n", plotLeft-4, sy(a)+4, a)
	}
	for _, c := range []float64{0, cMax / 2, cMax} {
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">$%.2f</text>`+"\n", sx(c), top+sh+14, c)
	}
	for i, r := range rs {
		px, py := sx(r.CostUSD), sy(r.SLOAttainment)
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			px, py, colour(r.Policy), px+6, py-4+float64(i%3)*8, html.EscapeString(r.Policy))
	}
}

type minute struct{ t, v float64 }

// perMinute is arrivals per minute from the first result's timeline.
func perMinute(rs []Result) []minute {
	if len(rs) == 0 {
		return nil
	}
	var out []minute
	for _, p := range rs[0].Timeline {
		m := math.Floor((p.T - 1e-9) / 60)
		if len(out) == 0 || out[len(out)-1].t != m*60 {
			out = append(out, minute{t: m * 60})
		}
		out[len(out)-1].v += float64(p.Arrivals)
	}
	return out
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func colour(policy string) string {
	switch policy {
	case "oracle":
		return "#2ca02c"
	case "predictive":
		return "#d62728"
	case "thresholds", "target":
		return "#ff7f0e"
	}
	return "#1f5fbf"
}
