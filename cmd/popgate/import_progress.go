package main

import (
	"fmt"
	"io"
	"strings"
)

// progressWidth is the width of the bar itself, in characters.
const progressWidth = 30

// progressBar draws "\r<label> [=====>    ]  42%" on a terminal, redrawn
// only when the percentage changes; off a terminal it draws nothing and
// the caller prints a summary line instead.
type progressBar struct {
	w     io.Writer
	on    bool
	label string
	total int64
	last  int
}

func newProgressBar(w io.Writer, on bool, label string, total int64) *progressBar {
	return &progressBar{w: w, on: on && total > 0, label: label, total: total, last: -1}
}

// update shows that pos of total bytes are done.
func (p *progressBar) update(pos int64) {
	if !p.on {
		return
	}
	pct := int(pos * 100 / p.total)
	if pct == p.last {
		return
	}
	p.last = pct
	fill := pct * progressWidth / 100
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%%", p.label, strings.Repeat("=", fill), strings.Repeat(" ", progressWidth-fill), pct)
}

// done ends the bar's line.
func (p *progressBar) done() {
	if p.on && p.last >= 0 {
		fmt.Fprintln(p.w)
		p.on = false
	}
}
