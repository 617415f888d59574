// Command pgha runs a PostgreSQL high-availability lab on a Docker engine.
package main

import (
	"os"

	"github.com/pgha/pgha/internal/cli"
)

func main() { os.Exit(cli.Main()) }
