package cli

import (
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/progress"
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
	eng, err := a.engine(ctx)
	if err != nil {
		return err
	}
	st := a.newStatus()
	defer st.Close()
	sup := &images.Supplier{Engine: eng, Progress: st}
	var set images.ImageSet
	err = progress.Step(st, "Resolving images", func() (string, error) {
		set, err = sup.Resolve(ctx)
		return "Images resolved", err
	})
	if err != nil {
		return err
	}
	if build {
		if err := sup.Build(ctx, &set); err != nil {
			return err
		}
	}
	if output == "json" {
		return printJSON(a.stdout, set)
	}
	var rows [][]string
	for _, im := range set.All() {
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
