package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/pgha/pgha/pkg/engine"
)

// etcdServingWait bounds the wait for one new member to serve before the next
// one starts; past it the next starts anyway, as they all did before.
const etcdServingWait = 5 * time.Second

// startEtcdInTurn starts the members of a new etcd cluster one after another,
// each once the one before it serves its peers. A new etcd 3.5 member first
// asks every peer for its member list, with a fixed 1 s timeout per peer; a
// peer whose port is open but which is itself still in that check answers
// nothing, so three members started at once wait 2 s each (measured here). A
// peer not started yet fails the ask at once (its name does not resolve yet),
// and one that serves answers at once. Only the member's log says that it
// serves its peers: its client port answers only once the cluster has a leader.
func (u *upRun) startEtcdInTurn(ctx context.Context) error {
	members := u.topo.Etcd
	for i, m := range members {
		s := specByNode(u.specs, m.Name)
		if err := u.start(ctx, s); err != nil {
			return err
		}
		if i == len(members)-1 {
			break
		}
		wctx, cancel := context.WithTimeout(ctx, etcdServingWait)
		err := u.d.Engine.WaitForLog(wctx, s.Name, etcdServingPeers)
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("starting etcd: %w", ctx.Err())
		}
		if err != nil { // start the rest anyway, as they all once started
			u.d.Progress.Detail(fmt.Sprintf("%s: no sign of serving its peers yet (%v); starting the other members", s.Name, err))
		}
	}
	return nil
}

// etcdServingPeers is what etcd 3.5 logs once it serves its peers.
const etcdServingPeers = `"msg":"serving peer traffic"`

// volumesNew says whether none of the specs' volumes existed before this up.
func (d *Docker) volumesNew(ctx context.Context, specs []Spec) (bool, error) {
	for _, s := range specs {
		if _, err := d.Engine.API.VolumeInspect(ctx, s.Volume); err == nil {
			return false, nil
		} else if !engine.IsNotFound(err) {
			return false, fmt.Errorf("inspecting volume %s: %w", s.Volume, err)
		}
	}
	return true, nil
}
