package provision

import (
	"github.com/docker/docker/api/types/filters"
	"github.com/pgha/pgha/pkg/topology"
)

// labelFilter matches resources carrying the label (with a value, when given).
func labelFilter(key string, value ...string) filters.Args {
	if len(value) > 0 {
		return filters.NewArgs(filters.Arg("label", key+"="+value[0]))
	}
	return filters.NewArgs(filters.Arg("label", key))
}

// clusterFilter matches the resources of one cluster.
func clusterFilter(name string) filters.Args { return labelFilter(topology.LabelCluster, name) }
