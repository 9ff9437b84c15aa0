{{- define "redflag.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "redflag.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "redflag.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries; "component" is passed as .component. */}}
{{- define "redflag.labels" -}}
app.kubernetes.io/name: {{ include "redflag.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "redflag.selectorLabels" -}}
app.kubernetes.io/name: {{ include "redflag.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "redflag.componentName" -}}
{{- printf "%s-%s" (include "redflag.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "redflag.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-secrets" (include "redflag.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "redflag.tlsSecretName" -}}
{{- printf "%s-%s-tls" (include "redflag.fullname" .root) .component -}}
{{- end -}}

{{- define "redflag.image" -}}
{{- printf "%s-%s:%s" .root.Values.image.repository .component (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{/* Hardened like the guide's systemd units: non-root, read-only root, no privileges. */}}
{{- define "redflag.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "redflag.containerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* An env var from the chart's Secret; the key is the variable's name unless .key says. */}}
{{- define "redflag.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "redflag.secretName" .root }}
      key: {{ default .name .key }}
{{- end -}}

{{/* Where PostgreSQL is, for the services and the migration Job (user and password apart). */}}
{{- define "redflag.dbEnv" -}}
- name: REDFLAG_DB_HOST
  value: {{ required "postgresql.host is required" .Values.postgresql.host | quote }}
- name: REDFLAG_DB_PORT
  value: {{ .Values.postgresql.port | quote }}
- name: REDFLAG_DB_NAME
  value: {{ .Values.postgresql.database | quote }}
- name: REDFLAG_DB_SSLMODE
  value: {{ .Values.postgresql.sslmode | quote }}
{{- end -}}
