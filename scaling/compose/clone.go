package compose

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

type connect struct {
	network  string
	endpoint *network.EndpointSettings
}

type spec struct {
	create  client.ContainerCreateOptions
	connect []connect // networks beyond the first (API < 1.44 takes one at create)
}

// cloneSpec makes the options that create replica number of project/service
// from a running replica's inspect: its configuration minus what is this
// container's alone (hostname, addresses, fixed host ports).
func cloneSpec(tmpl container.InspectResponse, project, service string, number int) (spec, error) {
	if tmpl.Config == nil || tmpl.HostConfig == nil {
		return spec{}, fmt.Errorf("compose: template %s has no config", tmpl.Name)
	}
	cfg := *tmpl.Config
	cfg.Hostname, cfg.Domainname = "", "" // Docker sets it to the new ID
	cfg.Labels = maps.Clone(cfg.Labels)
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[LabelProject] = project
	cfg.Labels[LabelService] = service
	cfg.Labels[LabelNumber] = strconv.Itoa(number)
	cfg.Labels[LabelOneOff] = "False"
	cfg.Labels[LabelClonedBy] = strings.TrimPrefix(tmpl.Name, "/")
	cfg.Env = slices.Clone(cfg.Env)
	cfg.Cmd = slices.Clone(cfg.Cmd)
	cfg.Entrypoint = slices.Clone(cfg.Entrypoint)
	if cfg.Healthcheck != nil {
		h := *cfg.Healthcheck
		h.Test = slices.Clone(h.Test)
		cfg.Healthcheck = &h
	}

	hc := *tmpl.HostConfig
	// A fixed host port can be bound once: clones get none, or a random one
	// where the template asked for a random one.
	hc.PortBindings = nil
	for port, bs := range tmpl.HostConfig.PortBindings {
		for _, b := range bs {
			if b.HostPort == "" || b.HostPort == "0" {
				if hc.PortBindings == nil {
					hc.PortBindings = network.PortMap{}
				}
				hc.PortBindings[port] = append(hc.PortBindings[port], b)
			}
		}
	}
	hc.Binds = slices.Clone(hc.Binds)
	hc.Mounts = slices.Clone(hc.Mounts)

	s := spec{create: client.ContainerCreateOptions{
		Name:       cloneName(strings.TrimPrefix(tmpl.Name, "/"), project, service, number),
		Config:     &cfg,
		HostConfig: &hc,
	}}
	if tmpl.NetworkSettings == nil || len(tmpl.NetworkSettings.Networks) == 0 {
		return s, nil
	}
	mode := string(hc.NetworkMode)
	if mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") {
		return s, nil
	}
	names := slices.Sorted(maps.Keys(tmpl.NetworkSettings.Networks))
	// The network named by NetworkMode (Compose sets it) goes in at create;
	// "default" means the bridge.
	first := mode
	if _, ok := tmpl.NetworkSettings.Networks[first]; !ok {
		first = names[0]
		if mode == "" || mode == "default" {
			hc.NetworkMode = container.NetworkMode(first)
		}
	}
	for _, name := range append([]string{first}, slices.DeleteFunc(names, func(n string) bool { return n == first })...) {
		ep := endpoint(tmpl.NetworkSettings.Networks[name], tmpl.ID, service)
		if name == first {
			s.create.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{name: ep}}
		} else {
			s.connect = append(s.connect, connect{network: name, endpoint: ep})
		}
	}
	return s, nil
}

// endpoint keeps a network attachment's aliases (the service name, which
// Docker's DNS answers with every replica, first) and links; the template's
// own short-ID alias and its addresses are dropped.
func endpoint(src *network.EndpointSettings, tmplID, service string) *network.EndpointSettings {
	ep := &network.EndpointSettings{Aliases: []string{service}}
	if src == nil {
		return ep
	}
	for _, a := range src.Aliases {
		if a == service || (len(a) >= 12 && strings.HasPrefix(tmplID, a)) {
			continue
		}
		ep.Aliases = append(ep.Aliases, a)
	}
	ep.Links = slices.Clone(src.Links)
	ep.DriverOpts = maps.Clone(src.DriverOpts)
	return ep
}

// cloneName follows the template's naming: Compose v1 names replicas
// project_service_N, v2 project-service-N.
func cloneName(tmpl, project, service string, number int) string {
	sep := "-"
	if strings.HasPrefix(tmpl, project+"_"+service+"_") {
		sep = "_"
	}
	return project + sep + service + sep + strconv.Itoa(number)
}

var containerIDRe = regexp.MustCompile(`[0-9a-f]{64}`)

// selfCandidates are the names this process's container may go by: the
// hostname (Docker's default is the short ID), then full IDs found in
// /proc/self/mountinfo (the hostname file's bind mount) and /proc/self/cgroup.
func selfCandidates() []string {
	var out []string
	if h, err := os.Hostname(); err == nil && h != "" {
		out = append(out, h)
	}
	for _, f := range []string{"/proc/self/mountinfo", "/proc/self/cgroup"} {
		out = append(out, idsIn(f)...)
	}
	return slices.Compact(out)
}

func idsIn(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	return containerIDs(bufio.NewScanner(f))
}

// containerIDs returns the 64-hex container IDs of lines that name one (a
// ".../containers/<id>/hostname" mount or a ".../docker/<id>" cgroup), first
// seen first.
func containerIDs(sc *bufio.Scanner) []string {
	var out []string
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "containers/") && !strings.Contains(line, "docker") {
			continue
		}
		for _, id := range containerIDRe.FindAllString(line, -1) {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}
