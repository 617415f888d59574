package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) newDownCommand() *cobra.Command {
	var name string
	var volumes bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the cluster's containers and network; -v also its volumes and secrets",
		Long: `Remove every container and the network that carry the cluster's label. Data volumes
and secrets stay, so that the next up starts from the same data, unless -v is given.
Resources pgha did not create are never touched. Nothing to remove is not an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			b, err := a.backendFor(ctx, name, nil)
			if err != nil {
				return err
			}
			st := a.newStatus()
			defer st.Close()
			st.Start(fmt.Sprintf("Removing cluster %s", name))
			start := time.Now()
			res, err := b.Down(ctx, name, volumes)
			if err != nil {
				return err
			}
			if res.Empty() {
				st.End(true, fmt.Sprintf("Nothing to remove for cluster %s", name))
				return nil
			}
			parts := []string{fmt.Sprintf("%d containers", len(res.Containers)), fmt.Sprintf("%d networks", len(res.Networks))}
			if volumes {
				parts = append(parts, fmt.Sprintf("%d volumes", len(res.Volumes)), "secrets")
			}
			st.End(true, fmt.Sprintf("Removed cluster %s: %s (%s)", name, strings.Join(parts, ", "), time.Since(start).Round(100*time.Millisecond)))
			if !volumes {
				st.Info("Data volumes and secrets were kept; `pgha down -v` removes them too.")
			}
			return nil
		},
	}
	addNameFlag(cmd, &name)
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "also remove the data volumes and secrets")
	return cmd
}
