// Package progress is how long operations report their steps. The CLI
// renders them (a spinner on a terminal, plain lines elsewhere); every step
// is opened and closed in one place, Step.
package progress

import (
	"context"
	"fmt"
	"time"
)

// Progress receives the steps of long operations.
type Progress interface {
	// Start begins a step, such as "Starting etcd".
	Start(title string)
	// Detail shows a line of output of the current step (build output, a wait).
	Detail(line string)
	// End closes the current step; summary replaces its title when non-empty.
	End(ok bool, summary string)
	// Info prints a line of its own, between steps.
	Info(msg string)
	// Warn reports something the user should know.
	Warn(msg string)
}

// Discard is a Progress that shows nothing.
type Discard struct{}

func (Discard) Start(string)     {}
func (Discard) Detail(string)    {}
func (Discard) End(bool, string) {}
func (Discard) Info(string)      {}
func (Discard) Warn(string)      {}

// Step runs fn as one step: the line opens with title and closes with fn's
// summary and the step's duration, or as failed.
func Step(p Progress, title string, fn func() (summary string, err error)) error {
	p.Start(title)
	start := time.Now()
	summary, err := fn()
	if err != nil {
		p.End(false, "")
		return err
	}
	if summary == "" {
		summary = title
	}
	p.End(true, fmt.Sprintf("%s (%s)", summary, Since(start)))
	return nil
}

// Named is one step of an ordered list.
type Named struct {
	// Title is the step's line while it runs ("Waiting for etcd"); a step
	// without one runs silently (its own sub-steps may show lines).
	Title string
	// Skip, when set and true at the step's turn, passes over the step.
	Skip func() bool
	// Run does the step and returns its summary ("etcd ready: 3 members healthy").
	Run func(ctx context.Context) (string, error)
}

// Run runs the steps in order and stops at the first error.
func Run(ctx context.Context, p Progress, steps []Named) error {
	for _, s := range steps {
		if s.Skip != nil && s.Skip() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.Title == "" {
			if _, err := s.Run(ctx); err != nil {
				return err
			}
			continue
		}
		if err := Step(p, s.Title, func() (string, error) { return s.Run(ctx) }); err != nil {
			return err
		}
	}
	return nil
}

// Since is a duration rounded for people: 1.2s, 340ms.
func Since(t time.Time) string {
	d := time.Since(t)
	if d < time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
