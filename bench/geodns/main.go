// Command geodns-bench runs the geodns role on its own so bench/geodns/run.sh
// can measure it without the node image.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/faultline/faultline/geodns"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := geodns.Run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "geodns:", err)
		os.Exit(1)
	}
}
