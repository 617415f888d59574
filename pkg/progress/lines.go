package progress

// Lines is a Progress that hands each step's title, outcome and note to f
// as one line (a library caller's log); build and wait output is dropped.
type Lines func(string)

func (f Lines) Start(title string) { f(title) }
func (f Lines) Detail(string)      {}
func (f Lines) End(ok bool, summary string) {
	if summary != "" {
		f(summary)
	}
}
func (f Lines) Info(msg string) { f(msg) }
func (f Lines) Warn(msg string) { f(msg) }
