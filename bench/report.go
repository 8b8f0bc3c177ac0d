package bench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/iamc/iamc/stdlib"
)

// table prints a Markdown table, padded so that it also reads in a
// terminal. Columns listed in right are right-aligned (numbers).
type table struct {
	head  []string
	right map[int]bool
	rows  [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) {
	width := make([]int, len(t.head))
	for i, h := range t.head {
		width[i] = len(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-len(c))
			if t.right[i] {
				b.WriteString(" " + pad + c + " |")
			} else {
				b.WriteString(" " + c + pad + " |")
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(t.head)
	sep := make([]string, len(t.head))
	for i := range sep {
		if t.right[i] {
			sep[i] = strings.Repeat("-", width[i]-1) + ":"
		} else {
			sep[i] = strings.Repeat("-", width[i])
		}
	}
	line(sep)
	for _, r := range t.rows {
		line(r)
	}
}

func ms(x float64) string  { return fmt.Sprintf("%.3f", x) }
func tps(x float64) string { return fmt.Sprintf("%.0f", x) }
func ratio(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", x)
}

func printConfig(w io.Writer, rows int, cr *ConfigReport) {
	var settings []string
	for _, k := range []string{"random_page_cost", "shared_buffers", "work_mem", "effective_cache_size", "jit"} {
		settings = append(settings, k+"="+cr.Shown[k])
	}
	pre := "no db-pre-request, as the shipped postgrest.conf"
	if cr.PreRequest {
		pre = "RLS side with db-pre-request " + stdlib.PreRequest
	}
	fmt.Fprintf(w, "\nROWS=%d, config %s (%s); %s; %d requests verified against the floors before timing\n\n",
		rows, cr.Name, strings.Join(settings, ", "), pre, cr.Verified)
	t := &table{
		head:  []string{"query", "user", "clients", "RLS med ms", "RLS p95 ms", "RLS TPS", "floor med ms", "floor p95 ms", "floor TPS", "ratio", "floor query"},
		right: map[int]bool{2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true},
	}
	for _, r := range cr.Results {
		t.add(r.Query, string(r.User), fmt.Sprint(r.Clients), ms(r.RLS.MedianMS), ms(r.RLS.P95MS), tps(r.RLS.TPS),
			ms(r.FloorS.MedianMS), ms(r.FloorS.P95MS), tps(r.FloorS.TPS), ratio(r.Ratio), r.Floor)
	}
	t.write(w)
	if len(cr.Calibrations) > 0 {
		fmt.Fprintln(w, "\nfloor candidates (median ms, one client; the fastest is timed):")
		for _, c := range cr.Calibrations {
			fmt.Fprintf(w, "  %s, %s: %s\n", c.Query, c.User, c.String())
		}
	}
}

func (c *Calibration) String() string {
	var names []string
	for n := range c.MedianMS {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.3f", n, c.MedianMS[n]))
	}
	return strings.Join(parts, ", ")
}

func printInvestigation(w io.Writer, rows int, inv *Investigation) {
	fmt.Fprintf(w, "\nROWS=%d, list pages under plan options (%d client, interleaved with the floor; RLS plan after the prepared statement settled)\n", rows, 1)
	for _, n := range inv.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	fmt.Fprintln(w)
	t := &table{
		head:  []string{"option", "query", "user", "RLS med ms", "RLS p95 ms", "floor med ms", "ratio", "floor query", "RLS plan"},
		right: map[int]bool{3: true, 4: true, 5: true, 6: true},
	}
	for _, o := range inv.Options {
		for _, c := range o.Cells {
			t.add(o.Name, c.Query, string(c.User), ms(c.RLS.MedianMS), ms(c.RLS.P95MS), ms(c.FloorS.MedianMS), ratio(c.Ratio), c.Floor, c.RLSPlan)
		}
	}
	t.write(w)
}

// PlotSVG draws the ratio RLS/floor (median) against the table size, one
// line per query (random users, the first clients value); solid for the
// default configuration, dashed for the tuned one. Hand-written SVG.
func PlotSVG(rep *Report) string {
	const (
		width, height          = 900, 520
		left, right, top, base = 70, 300, 40, 460
	)
	type key struct{ query, config string }
	series := map[key][][2]float64{}
	var order []key
	clients := rep.Clients[0]
	var sizes []float64
	maxRatio := 1.0
	for _, s := range rep.Sizes {
		sizes = append(sizes, float64(s.Rows))
		for _, c := range s.Configs {
			for _, r := range c.Results {
				if r.User != ClassRandom || r.Clients != clients || r.Ratio <= 0 {
					continue
				}
				k := key{r.Query, c.Name}
				if _, ok := series[k]; !ok {
					order = append(order, k)
				}
				series[k] = append(series[k], [2]float64{float64(s.Rows), r.Ratio})
				maxRatio = math.Max(maxRatio, r.Ratio)
			}
		}
	}
	sort.Float64s(sizes)
	lo, hi := math.Log10(sizes[0]), math.Log10(sizes[len(sizes)-1])
	if hi-lo < 0.5 {
		lo, hi = lo-0.25, hi+0.25
	}
	yMax := math.Ceil(maxRatio*1.1*2) / 2
	x := func(n float64) float64 { return left + (math.Log10(n)-lo)/(hi-lo)*float64(width-left-right) }
	y := func(r float64) float64 { return base - r/yMax*float64(base-top) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">iamc bench: median latency with RLS / floor, random users, %d client(s)</text>`+"\n", left, clients)
	// Axes, grid, ticks.
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, base, width-right, base)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top, left, base)
	step := 0.5
	if yMax > 6 {
		step = math.Ceil(yMax / 10)
	}
	for r := 0.0; r <= yMax+1e-9; r += step {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.1f</text>`+"\n",
			left, y(r), width-right, y(r), left-6, y(r)+4, r)
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#888" stroke-dasharray="2,2"/>`+"\n", left, y(1), width-right, y(1))
	for _, n := range sizes {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			x(n), base, x(n), base+5, x(n), base+20, humanRows(n))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">rows per table (log scale)</text>`+"\n", (left+width-right)/2, base+42)
	fmt.Fprintf(&b, `<text x="18" y="%d" transform="rotate(-90 18 %d)" text-anchor="middle">ratio RLS / floor</text>`+"\n", (top+base)/2, (top+base)/2)
	colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}
	queryColor := map[string]string{}
	for i, k := range order {
		c, ok := queryColor[k.query]
		if !ok {
			c = colors[len(queryColor)%len(colors)]
			queryColor[k.query] = c
		}
		pts := series[k]
		sort.Slice(pts, func(i, j int) bool { return pts[i][0] < pts[j][0] })
		var path []string
		for _, p := range pts {
			path = append(path, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		dash := ""
		if k.config != "default" {
			dash = ` stroke-dasharray="6,4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", c, dash, strings.Join(path, " "))
		for _, p := range pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(p[0]), y(p[1]), c)
		}
		ly := top + 10 + i*18
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s (%s)</text>`+"\n",
			width-right+15, ly, width-right+45, ly, c, dash, width-right+50, ly+4, xmlEscape(k.query), k.config)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func humanRows(n float64) string {
	switch {
	case n >= 1e6:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", n/1e6), ".0") + "M"
	case n >= 1e3:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", n/1e3), ".0") + "k"
	}
	return fmt.Sprintf("%.0f", n)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
