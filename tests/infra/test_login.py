"""infra/login.py with a SAML provider, on a stack of its own (the full stack's synth is covered
by test_template.py and, with OIDC, test_template_variant.py)."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_apigateway as apigw
from aws_cdk.assertions import Template

from infra.config import DeploymentConfig
from infra.login import Login

METADATA = "https://company.example/saml/metadata.xml"


@pytest.fixture(scope="module")
def doc():
    app = cdk.App(outdir=None)
    stack = cdk.Stack(app, "LoginProbe")
    api = apigw.RestApi(stack, "Api", deploy=False)
    config = DeploymentConfig.from_mapping({
        "bundleLambdaDependencies": False,
        "identityProvider": {"type": "SAML", "name": "CompanyAD", "metadataUrl": METADATA}})
    login = Login(stack, "Login", config=config, api=api, stage="v1")
    api.root.add_method("GET", authorization_type=apigw.AuthorizationType.CUSTOM, authorizer=login.authorizer)
    return Template.from_stack(stack).to_json()


def _only(doc, kind: str) -> dict:
    (resource,) = [r for r in doc["Resources"].values() if r["Type"] == kind]
    return resource


def test_saml_provider_from_its_metadata_url(doc):
    props = _only(doc, "AWS::Cognito::UserPoolIdentityProvider")["Properties"]
    assert (props["ProviderName"], props["ProviderType"]) == ("CompanyAD", "SAML")
    assert props["ProviderDetails"]["MetadataURL"] == METADATA
    assert props["AttributeMapping"] == {
        "email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"}
    (saml,) = [k for k, r in doc["Resources"].items() if r["Type"] == "AWS::Cognito::UserPoolIdentityProvider"]
    client = _only(doc, "AWS::Cognito::UserPoolClient")
    assert client["Properties"]["SupportedIdentityProviders"] == [{"Ref": saml}]  # its name, once created
    assert client["Properties"]["AllowedOAuthFlows"] == ["code"]
    assert "ImplicitCodeGrant" not in str(client)


@pytest.mark.parametrize(("value", "says"), [
    ({"type": "SAML", "name": "AD"}, "needs metadataUrl"),
    ({"type": "SAML", "name": "AD", "metadataUrl": METADATA, "clientId": "x"}, "clientId is not a SAML setting"),
    ({"type": "OIDC", "name": "Okta", "issuer": "https://okta.example", "clientId": "c",
      "clientSecret": "plain"}, "clientSecret"),  # a secret's value is never a setting, only its name
    ({"type": "SAML", "name": "AD", "metadataUrl": "http://insecure.example/m.xml"}, "metadataUrl"),
    ({"type": "OIDC", "name": "Cognito", "issuer": "https://okta.example", "clientId": "c",
      "clientSecretName": "s"}, "the user pool's own provider"),
    ("{not json", "JSON"),
])
def test_a_bad_identity_provider_is_refused_naming_what_is_wrong(value, says):
    with pytest.raises(ValueError, match="ltv:identityProvider") as caught:
        DeploymentConfig.from_mapping({"identityProvider": value})
    assert says in str(caught.value)


def test_the_derived_domain_prefix_must_not_hold_a_reserved_word():
    with pytest.raises(ValueError, match="ltv:loginDomainPrefix"):
        DeploymentConfig.from_mapping({"stackName": "AwsLtv"})
    assert DeploymentConfig.from_mapping({"stackName": "AwsLtv", "loginDomainPrefix": "ltv-login"})
