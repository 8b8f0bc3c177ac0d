//go:build !unix

package bench

import "errors"

func freeBytes(string) (int64, error) {
	return 0, errors.New("statfs is not available on this system")
}
