// Package compose is the scaling Provider for a Docker Compose stack: it adds
// and removes replicas of one Compose service through the Docker Engine API,
// the way `docker-compose up --scale` would, while the stack runs.
//
// The provider finds its project and service from its own container's labels
// (com.docker.compose.project, com.docker.compose.service), or from Config.
// Scaling up clones a running replica: same image, command, environment,
// healthcheck, resource limits, mounts and labels, the next
// com.docker.compose.container-number, and every network with the service
// name as alias, so Docker's DNS (and nginx re-resolving it) finds the new
// replica. Scaling down removes the newest replicas first: SIGTERM, wait up to
// Config.StopTimeout for the replica to drain and exit, then remove it. The
// replica the provider runs in is never removed.
//
// Compose v1 (docker-compose 1.29) and v2 (`docker compose`) use the same
// labels, so `ps`, `logs` and `down` include the clones, and a later
// `docker-compose up -d` treats them as its own replicas: it brings the
// service back to its deploy.replicas, removing the highest numbers (seen
// with 1.29.2); the controller then scales again as its signals say.
package compose
