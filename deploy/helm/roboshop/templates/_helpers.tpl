{{/* _helpers.tpl - names, labels, images, security contexts and the shop's topology, shared by every template. */}}

{{/* The shop's components: the seven services, the front door, the four backends. */}}
{{- define "roboshop.services" -}}catalogue user cart shipping ratings payment dispatch{{- end -}}
{{- define "roboshop.backends" -}}mongodb redis mysql rabbitmq{{- end -}}

{{/* Who connects to whom (the code's own variables: deploy/systemd/env/*.env, deploy/roboshop DEPS). The
     NetworkPolicies are made from this table and nothing else. */}}
{{- define "roboshop.flows" -}}
web: [catalogue, user, cart, shipping, payment, ratings]
catalogue: [mongodb]
user: [mongodb, redis]
cart: [catalogue, redis]
shipping: [cart, mysql]
ratings: [catalogue, mysql]
payment: [cart, user, redis, rabbitmq]
dispatch: [rabbitmq, redis]
seed-mongo: [mongodb]
seed-mysql: [mysql]
mongodb: []
redis: []
mysql: []
rabbitmq: []
{{- end -}}

{{/* The port each component listens on. */}}
{{- define "roboshop.port" -}}
{{- $ports := dict "mongodb" "27017" "redis" "6379" "mysql" "3306" "rabbitmq" "5672" -}}
{{- $b := index $ports . -}}
{{- if $b -}}{{ $b }}{{- else -}}8080{{- end -}}
{{- end -}}

{{- define "roboshop.labels" -}}
app.kubernetes.io/name: roboshop
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app: {{ .name }}
{{- end -}}

{{- define "roboshop.selector" -}}
app.kubernetes.io/name: roboshop
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* image: {root, name} -> registry/name:tag */}}
{{- define "roboshop.image" -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s/%s:%s" (.root.Values.image.registry | trimSuffix "/") .name $tag -}}
{{- end -}}

{{/* The credentials Secret: the user's or the chart's. */}}
{{- define "roboshop.secretName" -}}
{{- .Values.credentials.existingSecret | default (printf "%s-credentials" .Release.Name) -}}
{{- end -}}

{{/* The Secret holding a backend's passwords: {root, backend} */}}
{{- define "roboshop.backendSecret" -}}
{{- $e := index .root.Values.external .backend -}}
{{- if and $e.url $e.existingSecret -}}{{ $e.existingSecret }}{{- else -}}{{ include "roboshop.secretName" .root }}{{- end -}}
{{- end -}}

{{/* "true" when a backend is outside the chart: {root, backend} */}}
{{- define "roboshop.external" -}}
{{- if (index .root.Values.external .backend).url -}}true{{- end -}}
{{- end -}}

{{/* A backend's host and port: the in-chart Service, or the external URL's. {root, backend} */}}
{{- define "roboshop.backendHost" -}}
{{- $e := index .root.Values.external .backend -}}
{{- if $e.url -}}{{ (urlParse $e.url).host | splitList ":" | first }}{{- else -}}{{ .backend }}{{- end -}}
{{- end -}}
{{- define "roboshop.backendPort" -}}
{{- $e := index .root.Values.external .backend -}}
{{- $hp := "" -}}
{{- if $e.url -}}{{- $hp = (urlParse $e.url).host -}}{{- end -}}
{{- if contains ":" $hp -}}{{ splitList ":" $hp | last }}{{- else -}}{{ include "roboshop.port" .backend }}{{- end -}}
{{- end -}}

{{/* An env entry from a Secret key: {name, secret, key} */}}
{{- define "roboshop.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end -}}

{{- define "roboshop.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsGroup }}
fsGroup: {{ .Values.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "roboshop.securityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* What every pod of the chart shares: no service account token, no service-link variables (they would set
     REDIS_PORT=tcp://... and the like, which the services read as their own settings), scheduling. */}}
{{- define "roboshop.podCommon" -}}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- include "roboshop.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The variables every service reads (libshop: bind address, logs, tracing). {root, name} */}}
{{- define "roboshop.commonEnv" -}}
{{- $v := .root.Values -}}
- name: SHOP_BIND
  value: "0.0.0.0"
- name: LOG_LEVEL
  value: {{ $v.logLevel | quote }}
{{- if $v.logFormat }}
- name: LOG_FORMAT
  value: {{ $v.logFormat | quote }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ .name | quote }}
{{- if $v.tracing.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $v.tracing.endpoint | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $v.tracing.sampler | quote }}
{{- if $v.tracing.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $v.tracing.samplerArg | quote }}
{{- end }}
{{- if $v.tracing.resourceAttributes }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ $v.tracing.resourceAttributes | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* REDIS_URL and friends for one service's ACL user: {root, user} */}}
{{- define "roboshop.redisEnv" -}}
{{- $ctx := dict "root" .root "backend" "redis" -}}
{{- $host := include "roboshop.backendHost" $ctx -}}
{{- $port := include "roboshop.backendPort" $ctx -}}
{{- if and (include "roboshop.external" $ctx) (not .root.Values.external.redis.acl) }}
- name: REDIS_URL
  value: {{ printf "redis://%s:%s" $host $port | quote }}
{{- else }}
{{ include "roboshop.secretEnv" (dict "name" "REDIS_PASSWORD" "secret" (include "roboshop.backendSecret" $ctx) "key" (printf "redis-%s-password" .user)) }}
- name: REDIS_URL
  value: {{ printf "redis://%s:$(REDIS_PASSWORD)@%s:%s" .user $host $port | quote }}
{{- end }}
- name: REDIS_HOST
  value: {{ $host | quote }}
- name: REDIS_PORT
  value: {{ $port | quote }}
{{- end -}}

{{/* MONGO_URL of one database: {root, db, key} */}}
{{- define "roboshop.mongoEnv" -}}
{{- $e := .root.Values.external.mongodb -}}
- name: MONGO
  value: "true"
{{- if and $e.url $e.existingSecret .key }}
{{ include "roboshop.secretEnv" (dict "name" "MONGO_URL" "secret" $e.existingSecret "key" .key) }}
{{- else if $e.url }}
{{- $u := urlParse $e.url }}
- name: MONGO_URL
  value: {{ printf "%s://%s/%s%s" $u.scheme $u.host .db (ternary (printf "?%s" $u.query) "" (ne $u.query "")) | quote }}
{{- else }}
- name: MONGO_URL
  value: {{ printf "mongodb://mongodb:27017/%s" .db | quote }}
{{- end }}
{{- end -}}

{{/* DB_* for one MariaDB user: {root, user} */}}
{{- define "roboshop.mysqlEnv" -}}
{{- $ctx := dict "root" .root "backend" "mysql" -}}
- name: DB_HOST
  value: {{ include "roboshop.backendHost" $ctx | quote }}
- name: DB_PORT
  value: {{ include "roboshop.backendPort" $ctx | quote }}
- name: DB_USER
  value: {{ .user | quote }}
{{ include "roboshop.secretEnv" (dict "name" "DB_PASSWORD" "secret" (include "roboshop.backendSecret" $ctx) "key" (printf "mysql-%s-password" .user)) }}
{{- end -}}

{{/* AMQP_* for one RabbitMQ user: {root, user} */}}
{{- define "roboshop.amqpEnv" -}}
{{- $ctx := dict "root" .root "backend" "rabbitmq" -}}
- name: AMQP_HOST
  value: {{ include "roboshop.backendHost" $ctx | quote }}
- name: AMQP_PORT
  value: {{ include "roboshop.backendPort" $ctx | quote }}
- name: AMQP_USER
  value: {{ .user | quote }}
{{ include "roboshop.secretEnv" (dict "name" "AMQP_PASS" "secret" (include "roboshop.backendSecret" $ctx) "key" (printf "amqp-%s-password" .user)) }}
{{- end -}}

{{/* The pod-level /tmp every container gets (the root file system is read-only). */}}
{{- define "roboshop.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}
