{{- define "magnetar.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "magnetar.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "magnetar.labels" -}}
{{ include "magnetar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Where the auth key Secret is mounted. */}}
{{- define "magnetar.authDir" -}}/etc/magnetar/auth{{- end -}}
{{- define "magnetar.tlsDir" -}}/etc/magnetar/tls{{- end -}}

{{/* "true" when the binary protocol's TLS listener is on; refuses it without its Secret. */}}
{{- define "magnetar.binaryTls" -}}
{{- $b := .Values.binary -}}
{{- if and $b.enabled $b.tls.enabled -}}
{{- $_ := required "binary.tls.secretName is required when binary.tls.enabled" $b.tls.secretName -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when the broker tier is on (replicas > 1, or tier.enabled=true), "" otherwise;
     refuses the values that cannot work. */}}
{{- define "magnetar.tierEnabled" -}}
{{- $replicas := int .Values.replicas -}}
{{- $given := toString .Values.tier.enabled -}}
{{- if lt $replicas 1 -}}
{{- fail (printf "replicas must be at least 1 (got %d)" $replicas) -}}
{{- end -}}
{{- if not (has $given (list "auto" "true" "false")) -}}
{{- fail (printf "tier.enabled must be auto, true or false (got %s)" $given) -}}
{{- end -}}
{{- if and (gt $replicas 1) (eq $given "false") -}}
{{- fail (printf "tier.enabled=false needs replicas=1 (got replicas=%d): brokers without the tier would fight over partitions" $replicas) -}}
{{- end -}}
{{- if or (gt $replicas 1) (eq $given "true") -}}
{{- $grace := int .Values.terminationGracePeriodSeconds -}}
{{- $drain := int .Values.tier.drainTimeoutSeconds -}}
{{- if le $grace $drain -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be larger than tier.drainTimeoutSeconds (%d): the kubelet would kill a broker still handing its bundles over" $grace $drain) -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{/* A broker's stable address through the headless Service, for the container's environment:
     $(POD_NAME) and $(POD_NAMESPACE) are expanded by the kubelet (downward API). */}}
{{- define "magnetar.podAddress" -}}
$(POD_NAME).{{ include "magnetar.fullname" . }}-headless.$(POD_NAMESPACE).svc.{{ .Values.clusterDomain }}:{{ .Values.service.port }}
{{- end -}}

{{- define "magnetar.dashboardLabels" -}}
{{- $out := list -}}
{{- range $k, $v := .Values.grafana.dashboards.labels -}}
{{- $out = append $out (printf "%s=%v" $k $v) -}}
{{- end -}}
{{- join ", " $out -}}
{{- end -}}
