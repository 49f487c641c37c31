package gpu

import "fmt"

var fmtSscan = fmt.Sscan
