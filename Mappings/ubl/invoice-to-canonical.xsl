<?xml version="1.0" encoding="UTF-8"?>
<!--
  UBL 2.1 invoice → the canonical invoice: the fields downstream systems actually use,
  flat and without namespaces. XSLT 1.0 (runs in Switchboard's xslt step and xsltproc).
  Parameter `received`: when the invoice arrived (the route passes a date template).
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:inv="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
    xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
    xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
    exclude-result-prefixes="inv cac cbc">
  <xsl:output method="xml" encoding="UTF-8" indent="yes"/>
  <xsl:param name="received" select="''"/>

  <xsl:template match="/inv:Invoice">
    <invoice id="{cbc:ID}" issued="{cbc:IssueDate}" currency="{cbc:DocumentCurrencyCode}">
      <xsl:if test="$received != ''">
        <xsl:attribute name="received"><xsl:value-of select="$received"/></xsl:attribute>
      </xsl:if>
      <xsl:if test="cbc:DueDate">
        <xsl:attribute name="due"><xsl:value-of select="cbc:DueDate"/></xsl:attribute>
      </xsl:if>
      <xsl:if test="cac:OrderReference/cbc:ID">
        <order><xsl:value-of select="cac:OrderReference/cbc:ID"/></order>
      </xsl:if>
      <xsl:apply-templates select="cac:AccountingSupplierParty/cac:Party">
        <xsl:with-param name="role" select="'seller'"/>
      </xsl:apply-templates>
      <xsl:apply-templates select="cac:AccountingCustomerParty/cac:Party">
        <xsl:with-param name="role" select="'buyer'"/>
      </xsl:apply-templates>
      <lines>
        <xsl:apply-templates select="cac:InvoiceLine"/>
      </lines>
      <totals>
        <xsl:if test="cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount">
          <xsl:attribute name="net"><xsl:value-of select="cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount"/></xsl:attribute>
        </xsl:if>
        <xsl:if test="cac:TaxTotal/cbc:TaxAmount">
          <xsl:attribute name="tax"><xsl:value-of select="cac:TaxTotal/cbc:TaxAmount"/></xsl:attribute>
        </xsl:if>
        <xsl:attribute name="payable"><xsl:value-of select="cac:LegalMonetaryTotal/cbc:PayableAmount"/></xsl:attribute>
      </totals>
    </invoice>
  </xsl:template>

  <xsl:template match="cac:Party">
    <xsl:param name="role"/>
    <xsl:element name="{$role}">
      <xsl:attribute name="name">
        <xsl:value-of select="normalize-space((cac:PartyLegalEntity/cbc:RegistrationName | cac:PartyName/cbc:Name)[1])"/>
      </xsl:attribute>
      <xsl:if test="cac:PartyTaxScheme/cbc:CompanyID">
        <xsl:attribute name="vat"><xsl:value-of select="cac:PartyTaxScheme/cbc:CompanyID"/></xsl:attribute>
      </xsl:if>
      <xsl:if test="cac:PostalAddress/cac:Country/cbc:IdentificationCode">
        <xsl:attribute name="country"><xsl:value-of select="cac:PostalAddress/cac:Country/cbc:IdentificationCode"/></xsl:attribute>
      </xsl:if>
    </xsl:element>
  </xsl:template>

  <xsl:template match="cac:InvoiceLine">
    <line id="{cbc:ID}" quantity="{cbc:InvoicedQuantity}" unit="{cbc:InvoicedQuantity/@unitCode}"
          amount="{cbc:LineExtensionAmount}">
      <xsl:if test="cac:Price/cbc:PriceAmount">
        <xsl:attribute name="price"><xsl:value-of select="cac:Price/cbc:PriceAmount"/></xsl:attribute>
      </xsl:if>
      <xsl:value-of select="normalize-space(cac:Item/cbc:Name)"/>
    </line>
  </xsl:template>
</xsl:stylesheet>
