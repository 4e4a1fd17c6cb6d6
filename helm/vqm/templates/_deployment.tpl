{{/*
The Deployment of one stage: call with (dict "root" $ "component" "ingest"|"infer"|"alert").
The three stages run the same image and command line shape (`vqm <stage> -c channels.yaml`), the
same probes and the same lock-down; what differs is in the stage's values and in the few
branches below (the GPU for infer, the token and the API Service for alert, leases for ingest).
*/}}
{{- define "vqm.deployment" -}}
{{- $root := .root }}
{{- $component := .component }}
{{- $stage := index $root.Values $component }}
{{- $gpu := and (eq $component "infer") $root.Values.infer.gpu.enabled }}
{{- $scaled := and (eq $component "infer") (or $root.Values.infer.autoscaling.enabled $root.Values.infer.keda.enabled) }}
{{- $ctx := dict "root" $root "component" $component }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "vqm.componentName" (dict "root" $root "name" $component) }}
  namespace: {{ $root.Release.Namespace }}
  labels: {{- include "vqm.componentLabels" $ctx | nindent 4 }}
spec:
  {{- if not $scaled }}
  replicas: {{ $stage.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy: {{- toYaml $stage.strategy | nindent 4 }}
  selector:
    matchLabels: {{- include "vqm.componentSelectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "vqm.componentLabels" $ctx | nindent 8 }}
        {{- with (merge (dict) $stage.podLabels $root.Values.podLabels) }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "vqm.configChecksum" $ctx }}
        {{- with (merge (dict) $stage.podAnnotations $root.Values.podAnnotations) }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "vqm.serviceAccountName" $root }}
      # vqm never calls the Kubernetes API.
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- if and $gpu $root.Values.infer.gpu.runtimeClassName }}
      runtimeClassName: {{ $root.Values.infer.gpu.runtimeClassName }}
      {{- end }}
      securityContext: {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      containers:
        - name: {{ $component }}
          image: {{ ternary (include "vqm.gpuImage" $root) (include "vqm.image" $root) $gpu | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["vqm"]
          args: [{{ $component | quote }}, "--config", "/etc/vqm/channels.yaml"]
          ports:
            - name: http
              containerPort: {{ $root.Values.apiPort }}
              protocol: TCP
          env:
            - name: VQM_ENVIRONMENT
              value: {{ $root.Values.environment | quote }}
            - name: VQM_DEPLOYMENT
              value: {{ include "vqm.deploymentName" $root | quote }}
            - name: VQM_KAFKA_BOOTSTRAP
              value: {{ $root.Values.kafka.bootstrap | quote }}
            - name: VQM_REDIS_URL
              valueFrom:
                secretKeyRef:
                  name: {{ include "vqm.redisSecretName" $root }}
                  key: {{ ternary $root.Values.redis.existingSecretKey "redis-url" (not (empty $root.Values.redis.existingSecret)) }}
            # In a pod the API must listen on every address (probes and Services come from outside).
            - name: VQM_API_HOST
              value: "0.0.0.0"
            - name: VQM_API_PORT
              value: {{ $root.Values.apiPort | quote }}
            - name: VQM_LOG_LEVEL
              value: {{ $root.Values.logLevel | quote }}
            - name: VQM_WORKER_ID
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            {{- if eq $component "ingest" }}
            - name: VQM_LEASE_TTL
              value: {{ $root.Values.ingest.leaseTtl | quote }}
            {{- end }}
            {{- if eq $component "infer" }}
            - name: VQM_ONNX_PROVIDERS
              value: {{ ternary $root.Values.infer.gpu.onnxProviders $root.Values.infer.onnxProviders $gpu | quote }}
            # No sample store of flagged segments: the pod's only writable place is the small
            # /tmp emptyDir, which samples would fill (and the kubelet then evicts the pod).
            - name: VQM_SAMPLES_PER_CHANNEL
              value: "0"
            # Nor annotation candidates, for the same reason.
            - name: VQM_CANDIDATES_EVERY
              value: "0"
            {{- end }}
            {{- if and (eq $component "alert") (include "vqm.hasToken" $root) }}
            # Only the stage whose API users call gets the token (every stage refuses changing
            # calls without one).
            - name: VQM_API_TOKEN
              valueFrom:
                secretKeyRef:
                  name: {{ include "vqm.tokenSecretName" $root }}
                  key: {{ ternary $root.Values.auth.existingSecretKey "api-token" (not (empty $root.Values.auth.existingSecret)) }}
            - name: VQM_API_READ_TOKEN_REQUIRED
              value: {{ $root.Values.auth.readTokenRequired | quote }}
            {{- end }}
            {{- with (concat $root.Values.extraEnv $stage.extraEnv) }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- if eq $component "infer" }}
          # /healthz, not /readyz: a broker that is down at start must not get pods restarted (they
          # wait for it); the window covers the model warm-up, which shares the CPUs with the loop.
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $root.Values.infer.startupProbe.periodSeconds }}
            failureThreshold: {{ $root.Values.infer.startupProbe.failureThreshold }}
            timeoutSeconds: 3
          {{- end }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            {{- if ne $component "infer" }}
            initialDelaySeconds: 10
            {{- end }}
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          # 503 until the broker, Redis and (infer) the models are ready.
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          resources:
            {{- $resources := deepCopy $stage.resources }}
            {{- if $gpu }}
            {{- $limits := merge (dict $root.Values.infer.gpu.resourceName $root.Values.infer.gpu.count) (default dict $resources.limits) }}
            {{- $_ := set $resources "limits" $limits }}
            {{- end }}
            {{- toYaml $resources | nindent 12 }}
          securityContext: {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: channels
              mountPath: /etc/vqm
              readOnly: true
            - name: tmp
              mountPath: /tmp
      volumes:
        {{- include "vqm.channelsVolume" $ctx | trim | nindent 8 }}
        - name: tmp
          emptyDir:
            sizeLimit: {{ $root.Values.tmpSizeLimit }}
      {{- $nodeSelector := $stage.nodeSelector }}
      {{- $tolerations := $stage.tolerations }}
      {{- if $gpu }}
      {{- $nodeSelector = merge (dict) $stage.nodeSelector $root.Values.infer.gpu.nodeSelector }}
      {{- $tolerations = concat $stage.tolerations $root.Values.infer.gpu.tolerations }}
      {{- end }}
      {{- with $nodeSelector }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $tolerations }}
      tolerations: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $stage.affinity }}
      affinity: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $stage.topologySpreadConstraints }}
      topologySpreadConstraints: {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
