package netem

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// HasTable reports whether faultline's nftables table exists in the
// namespace of pid: a table with no rules left is still something a healed
// run must not leave behind.
func HasTable(ctx context.Context, pid int) (bool, error) {
	var has bool
	err := withConn(ctx, pid, func(c *nftables.Conn) error {
		_, err := c.ListTableOfFamily(tableName, nftables.TableFamilyIPv4)
		switch {
		case err == nil:
			has = true
		case !errors.Is(err, unix.ENOENT):
			return fmt.Errorf("find table %s: %w", tableName, err)
		}
		return nil
	})
	return has, err
}
