{{/* Chart name, truncated to the 63 characters Kubernetes allows in names. */}}
{{- define "tokenrelay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tokenrelay.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tokenrelay.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tokenrelay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tokenrelay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tokenrelay.labels" -}}
helm.sh/chart: {{ include "tokenrelay.chart" . }}
{{ include "tokenrelay.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: egress-gateway
{{- end }}

{{- define "tokenrelay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tokenrelay.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret whose keys are mounted as client-secret files, or "" when there is none. */}}
{{- define "tokenrelay.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if .Values.secrets.create }}
{{- printf "%s-secrets" (include "tokenrelay.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The tokenrelay config file: the user's config with the listener addresses the chart owns. Of `admin`, only
`readiness` is the user's (the schema allows nothing else there): it is carried over when given.
*/}}
{{- define "tokenrelay.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $admin := dict "host" "0.0.0.0" "port" (int .Values.service.adminPort) }}
{{- with .Values.config.admin }}
{{- if hasKey . "readiness" }}
{{- $_ := set $admin "readiness" .readiness }}
{{- end }}
{{- end }}
{{- $_ := set $config "listen" (dict "host" "0.0.0.0" "port" (int .Values.service.port)) }}
{{- $_ := set $config "admin" $admin }}
{{- toYaml $config }}
{{- end }}
