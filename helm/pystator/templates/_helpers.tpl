{{/* Names and labels shared by every template. */}}
{{- define "pystator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pystator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "pystator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pystator.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "pystator.secretName" -}}
{{- .Values.secret.existingSecret | default (printf "%s-secret" (include "pystator.fullname" .)) -}}
{{- end -}}

{{- define "pystator.machinesConfigMap" -}}
{{- .Values.machines.existingConfigMap | default (printf "%s-machines" (include "pystator.fullname" .)) -}}
{{- end -}}

{{/* Worker pods the autoscaler may run at most (the connection budget's worst case). */}}
{{- define "pystator.workerMaxReplicas" -}}
{{- if eq .Values.worker.autoscaling.mode "off" -}}
{{- .Values.worker.replicas | int -}}
{{- else -}}
{{- .Values.worker.autoscaling.maxReplicas | int -}}
{{- end -}}
{{- end -}}

{{/* Database connections of the release at its largest, one line per part (see NOTES.txt). */}}
{{- define "pystator.connectionBudget" -}}
{{- $w := .Values.worker -}}
{{- $workerPods := add (include "pystator.workerMaxReplicas" . | int) $w.rollingUpdate.maxSurge -}}
{{- /* threads pool: a fixed pool of concurrency + 3 (timers, relay, heartbeat), 2 autocommit
       and the liveness lock's own; prefork: the main process 4 + 2 + 1, each child 2 + 2 */ -}}
{{- $perWorker := add $w.concurrency 6 -}}
{{- if eq $w.pool "prefork" -}}
{{- $perWorker = add (mul $w.concurrency 4) 7 -}}
{{- end -}}
{{- $budget := dict "workers" (mul $workerPods $perWorker) "api" 0 "relay" 0 "migrations" 0 "keda" 0 -}}
{{- $_ := set $budget "workerPods" $workerPods -}}
{{- $_ := set $budget "perWorker" $perWorker -}}
{{- if .Values.api.enabled -}}
{{- $apiPods := add .Values.api.replicas .Values.api.rollingUpdate.maxSurge -}}
{{- $_ := set $budget "apiPods" $apiPods -}}
{{- $_ := set $budget "api" (mul $apiPods .Values.api.workers .Values.api.databasePoolSize) -}}
{{- end -}}
{{- if .Values.relay.enabled -}}
{{- /* pystator relay: a pool of 1 + 3 duties + 2 autocommit */ -}}
{{- $_ := set $budget "relay" (mul .Values.relay.replicas 6) -}}
{{- end -}}
{{- if .Values.migrations.enabled -}}
{{- $_ := set $budget "migrations" 1 -}}
{{- end -}}
{{- if and (eq $w.autoscaling.mode "keda") (eq $w.autoscaling.keda.trigger "postgresql") -}}
{{- $_ := set $budget "keda" 1 -}}
{{- end -}}
{{- if and (eq $w.autoscaling.mode "keda") (eq ($w.autoscaling.minReplicas | int) 0) -}}
{{- $_ := set $budget "keda" (add $budget.keda 1) -}}
{{- end -}}
{{- $_ := set $budget "total" (add $budget.workers $budget.api $budget.relay $budget.migrations $budget.keda) -}}
{{- toJson $budget -}}
{{- end -}}

{{/* Connection settings from the Secret; the API alone also gets the JWT secret. */}}
{{- define "pystator.secretEnv" -}}
{{- $secret := include "pystator.secretName" .root -}}
- name: PYSTATOR_DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: PYSTATOR_DATABASE_URL}
- name: PYSTATOR_BROKER_URL
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: PYSTATOR_BROKER_URL}
- name: PYSTATOR_REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: PYSTATOR_REDIS_URL, optional: true}
{{- if .api }}
- name: PYSTATOR_API_JWT_SECRET
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: PYSTATOR_API_JWT_SECRET}
{{- end }}
{{- end -}}

{{/* Environment, mounts and security context of every pystator container.
     Call with (dict "root" $ "api" true|false). */}}
{{- define "pystator.container" -}}
image: {{ include "pystator.image" .root }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
env:
  {{- include "pystator.secretEnv" . | nindent 2 }}
  - name: PYSTATOR_MACHINES
    value: /machines
  {{- range $name, $value := .root.Values.env }}
  - name: {{ $name }}
    value: {{ $value | quote }}
  {{- end }}
volumeMounts:
  - name: machines
    mountPath: /machines
    readOnly: true
  - name: tmp
    mountPath: /tmp
securityContext:
  {{- toYaml .root.Values.securityContext | nindent 2 }}
{{- end -}}

{{/* Pod-level settings shared by every pod. */}}
{{- define "pystator.podSpec" -}}
automountServiceAccountToken: false
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
volumes:
  - name: machines
    configMap:
      name: {{ include "pystator.machinesConfigMap" . }}
  - name: tmp
    emptyDir: {}
{{- end -}}

{{/* checksum annotations: pods restart when machines or connection settings change. */}}
{{- define "pystator.checksums" -}}
checksum/machines: {{ toYaml .Values.machines | sha256sum }}
checksum/secret: {{ toYaml .Values.secret | sha256sum }}
{{- end -}}

{{/* An exec probe running `pystator health ARGS...`. Call with (dict "probe" P "args" LIST). */}}
{{- define "pystator.execProbe" -}}
exec:
  command:
    {{- toYaml (concat (list "pystator" "health") .args) | nindent 4 }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end -}}

{{/* An HTTP probe on the API's port. Call with (dict "probe" P "path" PATH). */}}
{{- define "pystator.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: http
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end -}}
