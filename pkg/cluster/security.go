package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/topology"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdHosts are the names etcd's certificate is issued for: each member's
// name on the cluster network (its peers' and Patroni's), its container name,
// and this machine (the published ports, etcdctl inside a member).
func etcdHosts(topo topology.Cluster, publishHost string) []string {
	hosts := []string{"localhost", "127.0.0.1"}
	if publishHost != "" && publishHost != "127.0.0.1" {
		hosts = append(hosts, publishHost)
	}
	for _, e := range topo.Etcd {
		hosts = append(hosts, e.Name)
		if c := topo.ContainerName(e.Name); c != e.Name {
			hosts = append(hosts, c)
		}
	}
	return hosts
}

// enableEtcdAuth makes etcd's users and roles and turns authentication on.
// On a cluster where it is on and every user exists it changes nothing.
// Patroni and pgha's clients started before it keep working: their login
// was refused as "not enabled" and is made again when etcd asks for one.
func (u *upRun) enableEtcdAuth(ctx context.Context) (string, error) {
	login := u.access.EtcdLogin()
	login.User, login.Password = topology.EtcdRootUser, u.sec.EtcdRootPassword
	var root *clientv3.Client
	err := u.d.waitFor(ctx, u.deadline, "etcd to accept the root login", names(ByRole(u.specs, topology.RoleEtcd)), func(context.Context) (bool, string) {
		cli, err := clients.NewEtcd(u.access.EtcdEndpoints(), login)
		if err != nil {
			return false, err.Error()
		}
		root = cli
		return true, ""
	})
	if err != nil {
		return "", err
	}
	defer root.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := root.AuthStatus(cctx)
	if err != nil {
		return "", fmt.Errorf("asking etcd whether authentication is on: %v", clients.ShortErr(err))
	}
	users := []string{topology.EtcdRootUser}
	for _, r := range u.topo.EtcdRoles() {
		users = append(users, r.Name)
	}
	if st.Enabled {
		list, err := root.UserList(cctx)
		if err != nil {
			return "", fmt.Errorf("listing etcd's users: %v", clients.ShortErr(err))
		}
		if !slices.ContainsFunc(users, func(n string) bool { return !slices.Contains(list.Users, n) }) {
			return fmt.Sprintf("etcd authentication on: users %s", strings.Join(users, ", ")), nil
		}
	}
	if err := ensureEtcdUsers(cctx, root, u.topo, map[string]string{
		topology.EtcdRootUser: u.sec.EtcdRootPassword, topology.EtcdPatroniUser: u.sec.EtcdPatroniPassword,
		topology.EtcdPGHAUser: u.sec.EtcdPGHAPassword, topology.EtcdGuardUser: u.sec.EtcdGuardPassword,
	}); err != nil {
		return "", err
	}
	if !st.Enabled {
		if _, err := root.AuthEnable(cctx); err != nil {
			return "", fmt.Errorf("enabling etcd authentication: %v", clients.ShortErr(err))
		}
	}
	return fmt.Sprintf("etcd authentication enabled: users %s", strings.Join(users, ", ")), nil
}

// ensureEtcdUsers makes the roles with their key ranges and the users with
// their passwords; what exists is kept.
func ensureEtcdUsers(ctx context.Context, root *clientv3.Client, topo topology.Cluster, passwords map[string]string) error {
	for _, r := range topo.EtcdRoles() {
		if _, err := root.RoleAdd(ctx, r.Name); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
			return fmt.Errorf("adding etcd role %s: %v", r.Name, clients.ShortErr(err))
		}
		for _, p := range r.Permissions {
			end, perm := "", clientv3.PermissionType(clientv3.PermRead)
			if p.Prefix {
				end = clientv3.GetPrefixRangeEnd(p.Key)
			}
			if p.ReadWrite {
				perm = clientv3.PermissionType(clientv3.PermReadWrite)
			}
			if _, err := root.RoleGrantPermission(ctx, r.Name, p.Key, end, perm); err != nil {
				return fmt.Errorf("granting etcd role %s %s: %v", r.Name, p.Key, clients.ShortErr(err))
			}
		}
	}
	for _, name := range []string{topology.EtcdRootUser, topology.EtcdPatroniUser, topology.EtcdPGHAUser, topology.EtcdGuardUser} {
		if _, err := root.UserAdd(ctx, name, passwords[name]); err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
			return fmt.Errorf("adding etcd user %s: %v", name, clients.ShortErr(err))
		}
		// Each user has the role of its own name; root has etcd's root role.
		if _, err := root.UserGrantRole(ctx, name, name); err != nil {
			return fmt.Errorf("granting etcd user %s its role: %v", name, clients.ShortErr(err))
		}
	}
	return nil
}

// pgBackRestS3User gives pgBackRest an account of its own on versitygw and
// makes it the bucket's owner: its keys reach only that bucket, not the root
// account's powers. Both calls are idempotent.
func (u *upRun) pgBackRestS3User(ctx context.Context) (string, error) {
	key := u.sec.PgBackRestS3AccessKey
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	created, err := u.access.EnsureS3User(cctx, clients.S3Account{Access: key, Secret: u.sec.PgBackRestS3SecretKey, Role: "user"})
	if err != nil {
		return "", err
	}
	if err := u.access.ChangeBucketOwner(cctx, u.topo.ObjectStore.Bucket, key); err != nil {
		return "", err
	}
	verb := "has"
	if created {
		verb = "made"
	}
	return fmt.Sprintf("pgBackRest %s its own S3 account %s, owner of bucket %s", verb, key, u.topo.ObjectStore.Bucket), nil
}
