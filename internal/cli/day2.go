package cli

import "time"

// day2Timeout bounds each wait of a day-2 command (a restart, a reinit, a
// new node's clone) on this slow kind of machine.
const day2Timeout = 3 * time.Minute
