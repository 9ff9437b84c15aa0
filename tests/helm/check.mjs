// Checks a rendered chart (stdin): every document validates against its API schema
// (kubernetes-models and the cert-manager / Prometheus-operator model packages, offline),
// and the properties the schemas cannot see — they do not catch misspelled fields — hold:
// names and labels consistent, every container hardened, probes on grpc.health.v1, every
// referenced Secret rendered or user-provided, every Service targetPort exposed by the
// pods it selects.   usage: node check.mjs USER_PROVIDED_SECRET[,...] < rendered.yaml
import { parseAllDocuments } from "yaml";
import fs from "node:fs";

const provided = new Set((process.argv[2] || "").split(",").filter(Boolean));
const docs = parseAllDocuments(fs.readFileSync(0, "utf8")).map((d) => d.toJSON()).filter(Boolean);
const errors = [];
const fail = (doc, msg) => errors.push(`${doc.kind}/${doc.metadata?.name}: ${msg}`);

const modules = {
  "apps/v1": "kubernetes-models/apps/v1",
  v1: "kubernetes-models/v1",
  "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "batch/v1": "kubernetes-models/batch/v1",
  "autoscaling/v2": "kubernetes-models/autoscaling/v2",
  "cert-manager.io/v1": "@kubernetes-models/cert-manager/cert-manager.io/v1",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};
// Fields the chart relies on, checked by path because schemas accept unknown keys.
const known = {
  Deployment: ["spec.selector.matchLabels", "spec.template.spec.containers"],
  Job: ["spec.template.spec.containers", "metadata.annotations"],
  Service: ["spec.selector", "spec.ports"],
  NetworkPolicy: ["spec.podSelector", "spec.ingress"],
  Certificate: ["spec.secretName", "spec.issuerRef.name"],
};
const get = (o, path) => path.split(".").reduce((v, k) => (v == null ? v : v[k]), o);

for (const doc of docs) {
  const mod = modules[doc.apiVersion];
  if (!mod) { fail(doc, `unexpected apiVersion ${doc.apiVersion}`); continue; }
  const Model = (await import(`${mod}/${doc.kind}`))[doc.kind];
  try { new Model(doc).validate(); } catch (e) { fail(doc, `schema: ${e.message}`); }
  for (const path of known[doc.kind] || []) if (get(doc, path) == null) fail(doc, `missing ${path}`);
  const labels = doc.metadata?.labels || {};
  for (const l of ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by"]) {
    if (!labels[l]) fail(doc, `label ${l} missing`);
  }
  if (!doc.metadata.name.startsWith(`${labels["app.kubernetes.io/instance"]}-`)) {
    fail(doc, "name does not start with the release name");
  }
}

const secrets = new Set(docs.filter((d) => d.kind === "Secret").map((d) => d.metadata.name));
const certSecrets = new Set(docs.filter((d) => d.kind === "Certificate").map((d) => d.spec.secretName));
const deployments = docs.filter((d) => d.kind === "Deployment");
for (const d of deployments) {
  const podLabels = d.spec.template.metadata.labels;
  for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) {
    if (podLabels[k] !== v) fail(d, `selector ${k}=${v} does not match the pod labels`);
  }
}
// Jobs (the migration hook) run before the release's resources exist: they must be hooks.
for (const j of docs.filter((d) => d.kind === "Job")) {
  if (!j.metadata.annotations?.["helm.sh/hook"]) fail(j, "a Job that is not a Helm hook");
}
for (const d of docs.filter((x) => x.kind === "Deployment" || x.kind === "Job")) {
  const pod = d.spec.template.spec;
  if (pod.securityContext?.runAsNonRoot !== true) fail(d, "pod runAsNonRoot");
  if (pod.securityContext?.seccompProfile?.type !== "RuntimeDefault") fail(d, "pod seccomp RuntimeDefault");
  for (const c of pod.containers) {
    const sc = c.securityContext || {};
    if (sc.runAsNonRoot !== true) fail(d, `${c.name}: runAsNonRoot`);
    if (sc.readOnlyRootFilesystem !== true) fail(d, `${c.name}: readOnlyRootFilesystem`);
    if (sc.allowPrivilegeEscalation !== false) fail(d, `${c.name}: allowPrivilegeEscalation`);
    if (JSON.stringify(sc.capabilities?.drop) !== JSON.stringify(["ALL"])) fail(d, `${c.name}: drop ALL`);
    if (!c.resources?.requests || !c.resources?.limits) fail(d, `${c.name}: resources`);
    for (const p of d.kind === "Deployment" ? ["readinessProbe", "livenessProbe"] : []) {
      const port = c[p]?.grpc?.port;
      if (!port || !c.ports.some((x) => x.containerPort === port)) fail(d, `${c.name}: ${p} on a gRPC health port`);
    }
    for (const e of c.env || []) {
      const ref = e.valueFrom?.secretKeyRef?.name;
      if (ref && !secrets.has(ref) && !provided.has(ref)) fail(d, `env ${e.name}: Secret ${ref} is neither rendered nor user-provided`);
    }
  }
  for (const v of pod.volumes || []) {
    const ref = v.secret?.secretName;
    if (ref && !secrets.has(ref) && !certSecrets.has(ref) && !provided.has(ref)) {
      fail(d, `volume ${v.name}: Secret ${ref} is neither rendered, made by cert-manager, nor user-provided`);
    }
  }
}
for (const s of docs.filter((d) => d.kind === "Service")) {
  const selected = deployments.filter((d) =>
    Object.entries(s.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v));
  if (selected.length === 0) fail(s, "selects no pods");
  for (const p of s.spec.ports) {
    const ok = selected.every((d) => d.spec.template.spec.containers.some((c) =>
      c.ports.some((cp) => cp.name === p.targetPort || cp.containerPort === p.targetPort)));
    if (!ok) fail(s, `targetPort ${p.targetPort} is not a container port of the selected pods`);
  }
}
for (const n of docs.filter((d) => d.kind === "NetworkPolicy")) {
  const component = n.spec.podSelector.matchLabels["app.kubernetes.io/component"];
  const grpcRule = n.spec.ingress.find((r) => r.ports.some((p) => p.port === "grpc"));
  if (component !== "gateway" && !grpcRule?.from) fail(n, "an internal service accepts gRPC from anywhere");
}

if (errors.length) {
  console.error(errors.join("\n"));
  process.exit(1);
}
console.log(`${docs.length} documents OK`);
