{{/* _env.tpl - each service's own variables, the names of deploy/systemd/env/<svc>.env (docs/DEPLOY.md); every
     service listens on 8080 and finds its peers by their Kubernetes Service names. Secrets first, so that the
     URLs can use $(REDIS_PASSWORD). */}}

{{- define "roboshop.env.catalogue" -}}
{{ include "roboshop.mongoEnv" (dict "root" .root "db" "catalogue" "key" .root.Values.external.mongodb.catalogueUrlKey) }}
- name: CATALOGUE_SERVER_PORT
  value: "8080"
{{- end -}}

{{- define "roboshop.env.user" -}}
{{ include "roboshop.redisEnv" (dict "root" .root "user" "user") }}
{{ include "roboshop.mongoEnv" (dict "root" .root "db" "users" "key" .root.Values.external.mongodb.usersUrlKey) }}
- name: USER_SERVER_PORT
  value: "8080"
- name: SHOP_AUTH
  value: {{ .root.Values.session.auth | ternary "on" "off" | quote }}
{{- with .root.Values.session.ttlSeconds }}
- name: SHOP_SESSION_TTL
  value: {{ . | quote }}
{{- end }}
{{- with .root.Values.session.newTtlSeconds }}
- name: SHOP_SESSION_NEW_TTL
  value: {{ . | quote }}
{{- end }}
{{- with .root.Values.session.cartTtlSeconds }}
- name: CART_TTL_SECONDS
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "roboshop.env.cart" -}}
{{ include "roboshop.redisEnv" (dict "root" .root "user" "cart") }}
- name: CATALOGUE_HOST
  value: catalogue
- name: CATALOGUE_PORT
  value: "8080"
- name: CART_SERVER_PORT
  value: "8080"
{{- with .root.Values.session.cartTtlSeconds }}
- name: CART_TTL_SECONDS
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "roboshop.env.shipping" -}}
{{ include "roboshop.mysqlEnv" (dict "root" .root "user" "shipping") }}
{{ include "roboshop.secretEnv" (dict "name" "SHIPPING_QUOTE_SECRET" "secret" (include "roboshop.secretName" .root) "key" "shipping-quote-secret") }}
- name: CART_ENDPOINT
  value: cart:8080
- name: SHIPPING_SERVER_PORT
  value: "8080"
{{- end -}}

{{- define "roboshop.env.ratings" -}}
{{ include "roboshop.mysqlEnv" (dict "root" .root "user" "ratings") }}
{{- $ctx := dict "root" .root "backend" "mysql" }}
- name: PDO_URL
  value: {{ printf "mysql:host=%s;port=%s;dbname=ratings;charset=utf8mb4" (include "roboshop.backendHost" $ctx) (include "roboshop.backendPort" $ctx) | quote }}
- name: CATALOGUE_URL
  value: http://catalogue:8080
- name: RATINGS_SERVER_PORT
  value: "8080"
{{- end -}}

{{- define "roboshop.env.payment" -}}
{{ include "roboshop.redisEnv" (dict "root" .root "user" "payment") }}
{{ include "roboshop.amqpEnv" (dict "root" .root "user" "payment") }}
- name: CART_HOST
  value: cart
- name: CART_PORT
  value: "8080"
- name: USER_HOST
  value: user
- name: USER_PORT
  value: "8080"
- name: SHOP_SESSION_COOKIE
  value: {{ .root.Values.session.cookie | quote }}
- name: SHOP_PAYMENT_PORT
  value: "8080"
- name: PAYMENT_SERVER_PORT
  value: "8080"
{{- end -}}

{{- define "roboshop.env.dispatch" -}}
{{ include "roboshop.redisEnv" (dict "root" .root "user" "dispatch") }}
{{ include "roboshop.amqpEnv" (dict "root" .root "user" "dispatch") }}
- name: DISPATCH_SERVER_PORT
  value: "8080"
{{- end -}}
