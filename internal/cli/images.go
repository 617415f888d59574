package cli

import (
	"time"

	"github.com/pgha/pgha/pkg/provision"
	"github.com/spf13/cobra"
)

func (a *app) newImagesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Build or list the images pgha runs",
	}
	var output string
	build := &cobra.Command{
		Use:   "build",
		Short: "Build the images that are missing (an unchanged build context is never rebuilt)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.images(cmd, output, true)
		},
	}
	addOutputFlag(build, &output)
	list := &cobra.Command{
		Use:   "list",
		Short: "Show which image each role uses and where it comes from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.images(cmd, output, false)
		},
	}
	addOutputFlag(list, &output)
	cmd.AddCommand(build, list)
	return cmd
}

func (a *app) images(cmd *cobra.Command, output string, build bool) error {
	ctx := cmd.Context()
	docker, err := a.engine(ctx)
	if err != nil {
		return err
	}
	st := a.newStatus()
	defer st.Close()
	p := &provision.Provisioner{Docker: docker, Progress: st}
	st.Start("Resolving images")
	start := time.Now()
	set, err := p.ResolveImages(ctx)
	if err != nil {
		return err
	}
	st.End(true, "Images resolved ("+time.Since(start).Round(time.Millisecond).String()+")")
	if build {
		if err := p.BuildImages(ctx, &set); err != nil {
			return err
		}
	}
	if output == "json" {
		return printJSON(a.stdout, set)
	}
	var rows [][]string
	for _, im := range []provision.Image{set.Patroni, set.Etcd, set.ObjectStore, set.Guard} {
		state := "present"
		switch {
		case im.Unavailable != "":
			state = "unavailable: " + im.Unavailable
		case im.Pending():
			state = "to build"
		}
		rows = append(rows, []string{im.Role, im.Ref, im.Source, state})
	}
	a.printTable([]string{"ROLE", "IMAGE", "SOURCE", "STATE"}, rows, "SOURCE", "STATE", "IMAGE")
	return nil
}
