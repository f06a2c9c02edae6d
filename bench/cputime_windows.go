package bench

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + kernel) the process has used so far. Windows has no
// getrusage; GetProcessTimes reports the same in 100 ns units.
func processCPU() time.Duration {
	var creation, exit, kernel, user syscall.Filetime
	h, err := syscall.GetCurrentProcess()
	if err != nil || syscall.GetProcessTimes(h, &creation, &exit, &kernel, &user) != nil {
		return 0
	}
	return filetimeDuration(kernel) + filetimeDuration(user)
}

// filetimeDuration reads a FILETIME that holds a duration (Filetime.Nanoseconds would subtract
// the 1601 epoch, which only applies to points in time).
func filetimeDuration(ft syscall.Filetime) time.Duration {
	return time.Duration(int64(ft.HighDateTime)<<32|int64(ft.LowDateTime)) * 100
}
