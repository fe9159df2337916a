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
{{- .Values.urls.existingSecret | default (printf "%s-urls" (include "pystator.fullname" .)) -}}
{{- end -}}

{{- define "pystator.machinesConfigMap" -}}
{{- .Values.machines.existingConfigMap | default (printf "%s-machines" (include "pystator.fullname" .)) -}}
{{- end -}}

{{/* Environment, machines volume and security settings of every pystator container. */}}
{{- define "pystator.env" -}}
envFrom:
  - secretRef:
      name: {{ include "pystator.secretName" . }}
env:
  - name: PYSTATOR_MACHINES
    value: /machines
  {{- range $name, $value := .Values.env }}
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
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}

{{- define "pystator.volumes" -}}
- name: machines
  configMap:
    name: {{ include "pystator.machinesConfigMap" . }}
- name: tmp
  emptyDir: {}
{{- end -}}
