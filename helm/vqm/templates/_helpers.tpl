{{/*
Names, labels and the values every template shares. Every helper is prefixed "vqm.".
*/}}

{{- define "vqm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: <release>-vqm unless the release name already says vqm. */}}
{{- define "vqm.fullname" -}}
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

{{/* A resource's name: the full name and a suffix, within the 63 characters of a label. */}}
{{- define "vqm.componentName" -}}
{{- printf "%s-%s" (include "vqm.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vqm.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable for the life of a release (never the chart or app version). */}}
{{- define "vqm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vqm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource; helm.sh/chart is here, never in a selector. */}}
{{- define "vqm.labels" -}}
helm.sh/chart: {{ include "vqm.chart" . }}
{{ include "vqm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vqm
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels and selector labels of one component: call with (dict "root" $ "component" "infer"). */}}
{{- define "vqm.componentLabels" -}}
{{ include "vqm.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "vqm.componentSelectorLabels" -}}
{{ include "vqm.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* VQM_DEPLOYMENT: the Redis key namespace and the consumer groups' prefix. */}}
{{- define "vqm.deploymentName" -}}
{{- default (include "vqm.fullname" .) .Values.deploymentName }}
{{- end }}

{{- define "vqm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vqm.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference from (dict "image" <repository, tag, digest> "tag" <default tag>). */}}
{{- define "vqm.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .tag .image.tag) }}
{{- end }}
{{- end }}

{{/* The CPU image every stage runs. */}}
{{- define "vqm.image" -}}
{{- include "vqm.imageRef" (dict "image" .Values.image "tag" .Chart.AppVersion) }}
{{- end }}

{{/* The CUDA image inference runs when infer.gpu.enabled. */}}
{{- define "vqm.gpuImage" -}}
{{- $gpu := .Values.infer.gpu.image }}
{{- $image := dict "repository" (default .Values.image.repository $gpu.repository) "tag" $gpu.tag "digest" $gpu.digest }}
{{- include "vqm.imageRef" (dict "image" $image "tag" (printf "%s-cuda" .Chart.AppVersion)) }}
{{- end }}

{{/* The chart's Secret: the API token and the Redis URL, each unless an existing Secret has it. */}}
{{- define "vqm.secretName" -}}
{{- include "vqm.componentName" (dict "root" . "name" "credentials") }}
{{- end }}

{{- define "vqm.hasToken" -}}
{{- if or .Values.auth.existingSecret .Values.auth.apiToken }}true{{ end }}
{{- end }}

{{- define "vqm.tokenSecretName" -}}
{{- default (include "vqm.secretName" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "vqm.redisSecretName" -}}
{{- default (include "vqm.secretName" .) .Values.redis.existingSecret }}
{{- end }}

{{/* Whether the chart renders its Secret at all. */}}
{{- define "vqm.needsSecret" -}}
{{- if or (and .Values.auth.apiToken (not .Values.auth.existingSecret)) (not .Values.redis.existingSecret) }}true{{ end }}
{{- end }}

{{/*
The channels file. The chart renders it twice from channels.config: without notifications: for
every stage (a ConfigMap), and whole for vqm alert (a Secret) when notifications: is given.
*/}}
{{- define "vqm.channelsName" -}}
{{- include "vqm.componentName" (dict "root" . "name" "channels") }}
{{- end }}

{{- define "vqm.channelsFile.public" -}}
{{- toYaml (omit .Values.channels.config "notifications") }}
{{- end }}

{{- define "vqm.channelsFile.full" -}}
{{- toYaml .Values.channels.config }}
{{- end }}

{{- define "vqm.channelsHaveSecrets" -}}
{{- if and (not (include "vqm.channelsExternal" .)) .Values.channels.config.notifications }}true{{ end }}
{{- end }}

{{- define "vqm.channelsExternal" -}}
{{- if or .Values.channels.existingSecret .Values.channels.existingConfigMap }}true{{ end }}
{{- end }}

{{/* The volume with channels.yaml for a stage: call with (dict "root" $ "component" "alert"). */}}
{{- define "vqm.channelsVolume" -}}
{{- $root := .root }}
{{- $v := $root.Values.channels }}
{{- $items := list (dict "key" $v.key "path" "channels.yaml") }}
- name: channels
{{- if $v.existingSecret }}
  secret:
    secretName: {{ $v.existingSecret }}
    items: {{- toYaml $items | nindent 6 }}
{{- else if $v.existingConfigMap }}
  configMap:
    name: {{ $v.existingConfigMap }}
    items: {{- toYaml $items | nindent 6 }}
{{- else if and (eq .component "alert") (include "vqm.channelsHaveSecrets" $root) }}
  secret:
    secretName: {{ include "vqm.channelsName" $root }}
    items: {{- toYaml (list (dict "key" "channels.yaml" "path" "channels.yaml")) | nindent 6 }}
{{- else }}
  configMap:
    name: {{ include "vqm.channelsName" $root }}
    items: {{- toYaml (list (dict "key" "channels.yaml" "path" "channels.yaml")) | nindent 6 }}
{{- end }}
{{- end }}

{{/* What a stage's pods read at start, hashed so that a change rolls them. */}}
{{- define "vqm.configChecksum" -}}
{{- $root := .root }}
{{- $parts := list (include "vqm.channelsFile.public" $root) }}
{{- if eq .component "alert" }}
{{- $parts = append $parts (include "vqm.channelsFile.full" $root) }}
{{- $parts = append $parts (default "" $root.Values.auth.apiToken) }}
{{- end }}
{{- $parts = append $parts (default "" $root.Values.redis.url) }}
{{- join "\n---\n" $parts | sha256sum }}
{{- end }}

{{/* The segments topic: the channels file's topics.segments, else vqm's default. */}}
{{- define "vqm.segmentsTopic" -}}
{{- $topics := default dict .Values.channels.config.topics }}
{{- default "vqm.segments" $topics.segments }}
{{- end }}

{{/* Values that cannot work together fail the render with a message saying what to change. */}}
{{- define "vqm.validate" -}}
{{- if not .Values.kafka.bootstrap }}
{{- fail "kafka.bootstrap is required: host:port,... of your Kafka brokers (docs/kubernetes.md)" }}
{{- end }}
{{- if not (or .Values.redis.url .Values.redis.existingSecret) }}
{{- fail "redis.url (or redis.existingSecret) is required: redis://host:port/db of your Redis (docs/kubernetes.md)" }}
{{- end }}
{{- if and .Values.infer.autoscaling.enabled .Values.infer.keda.enabled }}
{{- fail "infer.autoscaling and infer.keda cannot both be enabled: KEDA makes its own HorizontalPodAutoscaler" }}
{{- end }}
{{- if and .Values.auth.readTokenRequired (not (include "vqm.hasToken" .)) }}
{{- fail "auth.readTokenRequired needs a token: set auth.apiToken or auth.existingSecret" }}
{{- end }}
{{- if has .Values.auth.apiToken (list "changeme" "secret" "token") }}
{{- fail "auth.apiToken is a placeholder that vqm refuses; generate one: openssl rand -hex 32" }}
{{- end }}
{{- if and .Values.channels.existingSecret .Values.channels.existingConfigMap }}
{{- fail "set channels.existingSecret or channels.existingConfigMap, not both" }}
{{- end }}
{{- end }}
