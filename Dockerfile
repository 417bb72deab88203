# outreach: one static binary for every role (migrate, scheduler, worker,
# dashboard, simulate, status, import, ...). Build: docker build -t outreach .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/outreach ./cmd/outreach

# Distroless: no shell, no package manager; runs as the unprivileged
# "nonroot" user. Health checks use `outreach healthcheck URL`.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/outreach /usr/local/bin/outreach
USER nonroot:nonroot
ENV LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/outreach"]
CMD ["help"]
