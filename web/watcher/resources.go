package watcher

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/decision/collect"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/web/store"
)

func (a *API) versionDoc(r *http.Request) obj {
	return obj{"id": "v1", "status": "CURRENT", "min_version": MinVersion, "max_version": MaxVersion,
		"links": []obj{{"href": a.baseURL(r) + "/v1/", "rel": "self"}}}
}

// getRoot is GET /: Watcher's version discovery document.
func (a *API) getRoot(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, obj{
		"name": "OpenStack Watcher API",
		"description": "Watcher is an OpenStack project which aims to improve physical resources usage through " +
			"better VM placement.",
		"versions":        []obj{a.versionDoc(r)},
		"default_version": a.versionDoc(r),
	})
}

// getV1 is GET /v1: the v1 document. Unlike Watcher's, it also links goals
// and strategies.
func (a *API) getV1(w http.ResponseWriter, r *http.Request) error {
	base := a.baseURL(r)
	res := func(name string) []obj {
		return []obj{{"href": base + "/v1/" + name + "/", "rel": "self"}, {"href": base + "/" + name + "/", "rel": "bookmark"}}
	}
	doc := obj{
		"id": "v1",
		"links": []obj{{"href": base + "/v1/", "rel": "self"},
			{"href": "http://docs.openstack.org/developer/watcher/dev/api-spec-v1.html", "rel": "describedby", "type": "text/html"}},
		"media_types":     []obj{{"base": "application/json", "type": "application/vnd.openstack.watcher.v1+json"}},
		"audit_templates": res("audit_templates"),
		"audits":          res("audits"),
		"actions":         res("actions"),
		"action_plans":    res("action_plans"),
		"scoring_engines": res("scoring_engines"),
		"services":        res("services"),
		"goals":           res("goals"),
		"strategies":      res("strategies"),
	}
	v := versionFrom(r.Context())
	if v.AtLeast(vDataModel) {
		doc["data_model"] = res("data_model")
	}
	if v.AtLeast(vWebhooks) {
		doc["webhooks"] = res("webhooks")
	}
	return writeJSON(w, http.StatusOK, doc)
}

func (a *API) goalView(r *http.Request, g *store.Goal, detail bool) obj {
	o := obj{"uuid": g.UUID, "name": g.Name, "display_name": g.DisplayName,
		"efficacy_specification": g.EfficacySpecification, "links": a.links(r, "goals", g.UUID)}
	if detail {
		o["created_at"], o["updated_at"], o["deleted_at"] = awareTime(&g.CreatedAt), awareTime(g.UpdatedAt), awareTime(g.DeletedAt)
	}
	return o
}

func (a *API) listGoals(detail bool) handler {
	return collectionHandler(a, listSpec{collection: store.CollectionGoals}, detail,
		func(r *http.Request, args listArgs) ([]store.Goal, error) {
			return a.deps.Store.ListGoals(r.Context(), args.page)
		},
		a.goalView, func(g *store.Goal) string { return g.UUID })
}

func resourceURL(name string, detail bool) string {
	if detail {
		return name + "/detail"
	}
	return name
}

func (a *API) getGoal(w http.ResponseWriter, r *http.Request) error {
	g, err := a.deps.Store.GetGoal(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.goalView(r, g, true))
}

func (a *API) strategyView(r *http.Request, s *store.Strategy, detail bool) obj {
	o := obj{"uuid": s.UUID, "name": s.Name, "display_name": s.DisplayName, "goal_uuid": s.GoalUUID,
		"goal_name": s.GoalName, "links": a.links(r, "strategies", s.UUID)}
	if detail {
		o["parameters_spec"] = s.ParametersSpec
		o["created_at"], o["updated_at"], o["deleted_at"] = awareTime(&s.CreatedAt), awareTime(s.UpdatedAt), awareTime(s.DeletedAt)
	}
	return o
}

func (a *API) listStrategies(detail bool) handler {
	return collectionHandler(a, listSpec{collection: store.CollectionStrategies, filters: []string{"goal"}}, detail,
		func(r *http.Request, args listArgs) ([]store.Strategy, error) {
			return a.deps.Store.ListStrategies(r.Context(), args.get("goal"), args.page)
		}, a.strategyView, func(s *store.Strategy) string { return s.UUID })
}

func (a *API) getStrategy(w http.ResponseWriter, r *http.Request) error {
	s, err := a.deps.Store.GetStrategy(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.strategyView(r, s, true))
}

// getStrategyState is Watcher's readiness list: the datasource (Ballast's
// model source), the metrics the model carries, the cluster data models.
func (a *API) getStrategyState(w http.ResponseWriter, r *http.Request) error {
	s, err := a.deps.Store.GetStrategy(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	avail := func(ok bool) string {
		if ok {
			return "available"
		}
		return "not available"
	}
	c, merr := a.deps.Models.Model(r.Context(), collect.DefaultWindow)
	ok := merr == nil && c != nil
	comment := ""
	if merr != nil {
		comment = merr.Error()
	}
	var hostUsage, instUsage, ceph bool
	if ok {
		for _, h := range c.Hosts {
			hostUsage = hostUsage || h.Usage != nil
		}
		for _, in := range c.Instances {
			instUsage = instUsage || in.Usage != nil
		}
		ceph = c.Ceph != nil
	}
	return writeJSON(w, http.StatusOK, []obj{
		{"type": "Datasource", "state": "ballast: " + avail(ok), "mandatory": true, "comment": comment},
		{"type": "Metrics", "state": []obj{{"host_cpu_usage": avail(hostUsage)}, {"instance_cpu_usage": avail(instUsage)}},
			"mandatory": false, "comment": ""},
		{"type": "CDM", "state": []obj{{"compute_model": avail(ok && len(c.Hosts) > 0)}, {"storage_model": avail(ceph)},
			{"baremetal_model": "not available"}}, "mandatory": true, "comment": ""},
		{"type": "Name", "state": s.Name, "mandatory": "", "comment": ""},
	})
}

func (a *API) scoringView(r *http.Request, s *store.ScoringEngine, detail bool) obj {
	o := obj{"uuid": s.UUID, "name": s.Name, "description": s.Description, "links": a.links(r, "scoring_engines", s.UUID)}
	if detail {
		o["metainfo"] = s.Metainfo
		o["created_at"], o["updated_at"], o["deleted_at"] = awareTime(&s.CreatedAt), awareTime(s.UpdatedAt), awareTime(s.DeletedAt)
	}
	return o
}

func (a *API) listScoringEngines(detail bool) handler {
	return collectionHandler(a, listSpec{collection: store.CollectionScoringEngines}, detail,
		func(r *http.Request, args listArgs) ([]store.ScoringEngine, error) {
			return a.deps.Store.ListScoringEngines(r.Context(), args.page)
		}, a.scoringView, func(s *store.ScoringEngine) string { return s.UUID })
}

func (a *API) getScoringEngine(w http.ResponseWriter, r *http.Request) error {
	s, err := a.deps.Store.GetScoringEngine(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.scoringView(r, s, true))
}

// Service statuses.
const (
	serviceActive = "ACTIVE"
	serviceFailed = "FAILED"
)

func (a *API) serviceView(r *http.Request, s *store.Service, detail bool) obj {
	seen := s.CreatedAt
	if s.UpdatedAt != nil {
		seen = *s.UpdatedAt
	}
	if s.LastSeenUp != nil {
		seen = *s.LastSeenUp
	}
	status := serviceActive
	if d := a.cfg.Now().Sub(seen); d > a.cfg.ServiceDownTime || d < -a.cfg.ServiceDownTime {
		status = serviceFailed
	}
	id := strconv.FormatInt(s.ID, 10)
	o := obj{"id": s.ID, "name": s.Name, "host": s.Host, "status": status, "links": a.links(r, "services", id)}
	if detail {
		o["last_seen_up"] = naiveTime(s.LastSeenUp)
		o["created_at"], o["updated_at"], o["deleted_at"] = awareTime(&s.CreatedAt), awareTime(s.UpdatedAt), awareTime(s.DeletedAt)
	}
	return o
}

func (a *API) listServices(detail bool) handler {
	return collectionHandler(a, listSpec{collection: store.CollectionServices, intMarker: true}, detail,
		func(r *http.Request, args listArgs) ([]store.Service, error) {
			list, err := a.deps.Store.ListServices(r.Context(), args.page)
			if errors.Is(err, audit.ErrNotFound) {
				return nil, notFoundErr("The service %s cannot be found.", args.page.Marker)
			}
			return list, err
		}, a.serviceView, func(s *store.Service) string { return strconv.FormatInt(s.ID, 10) })
}

func (a *API) getService(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	s, err := a.deps.Store.GetService(r.Context(), id)
	if errors.Is(err, audit.ErrNotFound) {
		return notFoundErr("The service %s cannot be found.", id)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.serviceView(r, s, true))
}

// getDataModel is GET /v1/data_model (≥1.3): the compute model flattened
// as Watcher's ModelRoot.to_list does, one row per instance (and one per
// empty node), values as strings.
func (a *API) getDataModel(w http.ResponseWriter, r *http.Request) error {
	v := versionFrom(r.Context())
	if !v.AtLeast(vDataModel) {
		return notAcceptable()
	}
	q := r.URL.Query()
	for k := range q {
		if k != "data_model_type" && k != "audit_uuid" {
			return badRequest("Unknown argument: %q", k)
		}
	}
	typ := q.Get("data_model_type")
	if typ == "" {
		typ = "compute"
	}
	if typ != "compute" {
		return notFoundErr("The %s data model could not be found", typ)
	}
	c, err := a.deps.Models.Model(r.Context(), collect.DefaultWindow)
	if err != nil {
		return errorf(http.StatusServiceUnavailable, "The cluster data model is not available: %v", err)
	}
	if id := q.Get("audit_uuid"); id != "" {
		if _, err := routeUUID("audit_uuid", id); err != nil {
			return err
		}
		au, err := a.deps.Store.GetAudit(r.Context(), id)
		if err != nil {
			return err
		}
		scope, err := decision.ParseWatcherScope(au.Scope)
		if err != nil {
			return badRequest("%v", err)
		}
		if c, err = scope.Apply(c); err != nil {
			return badRequest("%v", err)
		}
	}
	return writeJSON(w, http.StatusOK, obj{"context": dataModelRows(c, v.AtLeast(vExtendedModel))})
}

// nodeUUID is a host's UUID, or one derived from its name when the
// inventory has none.
func nodeUUID(h *model.Host) string {
	if h.UUID != "" {
		return h.UUID
	}
	return uuid.NewSHA1(uuid.NameSpaceDNS, []byte(h.Name)).String()
}

func pyFloat(f float64) string {
	if f == 0 {
		f = 1
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func dataModelRows(c *model.Cluster, extended bool) []map[string]string {
	byHost := map[string][]*model.Instance{}
	for i := range c.Instances {
		in := &c.Instances[i]
		byHost[in.Host] = append(byHost[in.Host], in)
	}
	hosts := make([]*model.Host, len(c.Hosts))
	for i := range c.Hosts {
		hosts[i] = &c.Hosts[i]
	}
	sort.Slice(hosts, func(i, j int) bool { return nodeUUID(hosts[i]) < nodeUUID(hosts[j]) })
	rows := []map[string]string{}
	for _, h := range hosts {
		status, state := "enabled", "up"
		if h.State == model.HostDisabled || h.State == model.HostMaintenance {
			status = "disabled"
		}
		if h.PowerState == model.PowerOff {
			state = "down"
		}
		node := map[string]string{
			"node_uuid": nodeUUID(h), "node_hostname": h.Name, "node_status": status,
			"node_disabled_reason": h.DisabledReason, "node_state": state,
			"node_memory": strconv.FormatInt(h.Capacity.MemoryMB, 10), "node_memory_mb_reserved": strconv.FormatInt(h.Reserved.MemoryMB, 10),
			"node_disk": strconv.FormatInt(h.Capacity.DiskGB, 10), "node_disk_gb_reserved": strconv.FormatInt(h.Reserved.DiskGB, 10),
			"node_vcpus": strconv.Itoa(h.Capacity.VCPUs), "node_vcpu_reserved": strconv.Itoa(h.Reserved.VCPUs),
			"node_memory_ratio": pyFloat(h.AllocationRatio.Memory), "node_vcpu_ratio": pyFloat(h.AllocationRatio.VCPU),
			"node_disk_ratio": pyFloat(h.AllocationRatio.Disk),
		}
		insts := byHost[h.Name]
		if len(insts) == 0 {
			rows = append(rows, node)
			continue
		}
		sort.Slice(insts, func(i, j int) bool { return insts[i].UUID < insts[j].UUID })
		for _, in := range insts {
			row := make(map[string]string, len(node)+12)
			for k, v := range node {
				row[k] = v
			}
			meta, _ := json.Marshal(in.Metadata.Extra)
			if in.Metadata.Extra == nil {
				meta = []byte("{}")
			}
			row["server_uuid"], row["server_name"], row["server_state"] = in.UUID, in.Name, string(in.State)
			row["server_memory"] = strconv.FormatInt(in.Flavor.MemoryMB, 10)
			row["server_disk"] = strconv.FormatInt(in.Flavor.DiskGB, 10)
			row["server_vcpus"] = strconv.Itoa(in.Flavor.VCPUs)
			row["server_metadata"] = string(meta)
			row["server_project_id"] = in.ProjectID
			row["server_locked"] = pyBool(in.Metadata.Locked)
			row["server_watcher_exclude"] = pyBool(in.Metadata.Excluded)
			if extended {
				row["server_pinned_az"] = in.Metadata.PinnedAZ
				row["server_flavor_extra_specs"] = "{}"
			}
			rows = append(rows, row)
		}
	}
	return rows
}
