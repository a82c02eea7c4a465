module github.com/stevedore-dev/stevedore/hack/node/pause

go 1.24.0
